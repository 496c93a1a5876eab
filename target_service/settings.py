"""Service configuration: one pydantic-settings model, profiles as named toggle sets.

A *profile* is not a code path of its own: it is a named set of optimization
toggles. The naive profile is the honest "before" state (N+1 queries, KPIs
aggregated from raw tables, sequential chart queries, no cache) so the impact of
every optimization can be measured on the same API, one toggle at a time if
needed (`TARGET_TOGGLES__PARALLEL_CHARTS=false`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from target_service.elevenlabs.settings import ElevenLabsSettings

ProfileName = Literal["optimized", "naive"]


class Toggles(BaseModel):
    """The optimizations the service can switch on or off, each measurable alone."""

    kpi_view: bool = True
    """Read 30-day KPIs from the `user_kpi_summary` materialized view."""
    batch_queries: bool = True
    """One grouped query (agent stats from the rollup, CASE-bucketed lead quality) instead of
    one query per agent or per bucket (N+1)."""
    parallel_charts: bool = True
    """Run the analytics chart queries concurrently on separate pool connections."""
    rollup_charts: bool = True
    """Answer the hourly-load chart from the `agent_analytics` rollup, not raw calls."""
    kpi_refresher: bool = True
    """Run the debounced `REFRESH MATERIALIZED VIEW CONCURRENTLY` listener."""
    custom_plans: bool = True
    """`plan_cache_mode=force_custom_plan`, so prepared statements can use partial indexes."""
    parallel_upstream: bool = True
    """Fetch every agent's ElevenLabs configuration at once (else one after another)."""
    upstream_retries: bool = True
    """Retry transient ElevenLabs failures with backoff (else one attempt)."""
    circuit_breaker: bool = True
    """Stop calling a failing ElevenLabs for a cool-down and serve fallbacks at once."""
    config_cache: bool = True
    """Keep ElevenLabs configurations in memory: fresh within a TTL, a fallback after."""
    response_cache: bool = True
    """Cache overview/analytics bodies and agent info/stats per user, evicted on change."""
    auth_cache: bool = True
    """Remember API key -> user lookups for a while instead of querying per request."""
    warm_cache: bool = True
    """Fill the caches for the most active users at start-up."""


PROFILES: dict[str, Toggles] = {
    "optimized": Toggles(),
    "naive": Toggles(
        kpi_view=False,
        batch_queries=False,
        parallel_charts=False,
        rollup_charts=False,
        kpi_refresher=False,
        custom_plans=False,
        parallel_upstream=False,
        upstream_retries=False,
        circuit_breaker=False,
        config_cache=False,
        response_cache=False,
        auth_cache=False,
        warm_cache=False,
    ),
}


class PoolSettings(BaseModel):
    """asyncpg pool sizing and safety limits."""

    min_size: int = Field(default=2, ge=0)
    max_size: int = Field(default=10, ge=1)
    statement_timeout_ms: int = Field(default=5_000, ge=0)
    acquire_timeout_s: float = Field(default=5.0, gt=0)
    connect_attempts: int = Field(default=6, ge=1)
    connect_backoff_s: float = Field(default=0.25, gt=0)


class CacheSettings(BaseModel):
    """Sizes and TTLs of the in-memory caches (soft TTL: served stale while refreshed)."""

    max_entries: int = Field(default=50_000, ge=1)
    max_bytes: int = Field(default=256 << 20, ge=1)
    overview_ttl_s: float = Field(default=300.0, gt=0)
    overview_soft_ttl_s: float = Field(default=60.0, gt=0)
    analytics_ttl_s: float = Field(default=600.0, gt=0)
    analytics_soft_ttl_s: float = Field(default=120.0, gt=0)
    agent_info_ttl_s: float = Field(default=300.0, gt=0)
    agent_stats_ttl_s: float = Field(default=60.0, gt=0)
    auth_ttl_s: float = Field(default=300.0, gt=0)
    warm_top_users: int = Field(default=50, ge=0)
    listener_backoff_s: float = Field(default=0.5, gt=0)


class Settings(BaseSettings):
    """Everything the service reads from its environment (prefix `TARGET_`)."""

    model_config = SettingsConfigDict(
        env_prefix="TARGET_", env_nested_delimiter="__", extra="ignore"
    )

    database_url: SecretStr = SecretStr("postgresql://postgres@127.0.0.1:5432/postgres")
    profile: ProfileName = "optimized"
    toggles: Toggles | None = None
    """Explicit toggles; when unset they come from the profile."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(default=1, ge=1)
    log_level: str = "info"

    pool: PoolSettings = PoolSettings()
    cache: CacheSettings = CacheSettings()

    chart_timeout_s: float = Field(default=2.0, gt=0)
    kpi_debounce_s: float = Field(default=0.2, ge=0)
    kpi_max_delay_s: float = Field(default=1.0, gt=0)
    """Upper bound on how long a change waits for a KPI refresh under constant writes."""

    gzip_minimum_size: int = Field(default=1_024, ge=0)
    gzip_level: int = Field(default=5, ge=1, le=9)

    max_range_days: int = Field(default=366, ge=1)
    max_page_size: int = Field(default=100, ge=1)

    elevenlabs: ElevenLabsSettings = ElevenLabsSettings()
    elevenlabs_enabled: bool = True
    """Off: configurations come from the stored snapshots only (no upstream calls)."""
    config_fresh_s: float = Field(default=60.0, gt=0)
    """A cached configuration younger than this is as good as live."""
    config_retention_s: float = Field(default=3_600.0, gt=0)
    """How long a cached configuration stays usable as a fallback."""
    snapshot_refresh_s: float = Field(default=300.0, ge=0)
    """Rewrite an agent's stored snapshot when older than this (or changed)."""

    @model_validator(mode="before")
    @classmethod
    def _toggles_over_profile(cls, data: object) -> object:
        """Toggles given one by one (`TARGET_TOGGLES__KPI_VIEW=true`) override the profile's.

        Without this, setting one toggle replaced the profile's whole set with
        `Toggles()` defaults: `naive` plus one toggle became `optimized`. A
        complete `Toggles` instance is still taken as it is.
        """
        if isinstance(data, dict) and isinstance(data.get("toggles"), dict):
            profile = data.get("profile", cls.model_fields["profile"].default)
            base = PROFILES.get(profile) if isinstance(profile, str) else None
            if base is not None:  # an unknown profile fails validation below
                data = {**data, "toggles": {**base.model_dump(), **data["toggles"]}}
        return data

    @model_validator(mode="after")
    def _fill_toggles(self) -> Settings:
        if self.toggles is None:
            self.toggles = PROFILES[self.profile].model_copy()
        return self

    @property
    def flags(self) -> Toggles:
        """The effective toggles (never None after validation)."""
        assert self.toggles is not None
        return self.toggles

    @property
    def upstream(self) -> ElevenLabsSettings:
        """The ElevenLabs client settings with the profile's toggles applied."""
        return self.elevenlabs.model_copy(update={
            "parallel": self.elevenlabs.parallel and self.flags.parallel_upstream,
            "retries": self.elevenlabs.retries and self.flags.upstream_retries,
            "circuit_breaker": self.elevenlabs.circuit_breaker and self.flags.circuit_breaker,
        })
