"""Service configuration: one pydantic-settings model, profiles as named toggle sets.

A *profile* is not a code path of its own: it is a named set of optimization
toggles. The naive profile is the honest "before" state (N+1 queries, KPIs
aggregated from raw tables, sequential chart queries, no cache) so the impact of
every optimization can be measured on the same API, one toggle at a time if
needed (`TARGET_TOGGLES__PARALLEL_CHARTS=false`).
"""

from __future__ import annotations

import enum
import importlib.metadata
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretBytes, SecretStr, model_validator
from pydantic.networks import _BaseMultiHostUrl, _BaseUrl
from pydantic_core import MultiHostUrl, Url
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
    load_shedding: bool = True
    """Answer 503 with `Retry-After` at once past `max_in_flight` requests in flight per
    worker (`target_service/shedding.py`), instead of queueing without bound."""
    light_reset: bool = True
    """Give connections back to the pool without asyncpg's session-reset query (`RESET
    ALL; UNLISTEN *; CLOSE ALL; ...`, a database round trip per checkout): pooled
    connections never change session state (LISTEN and the advisory lock live on the
    refresher's own connection). An open transaction is still rolled back."""


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
        load_shedding=False,
        light_reset=False,
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


class TracingSettings(BaseModel):
    """OpenTelemetry tracing (`TARGET_TRACING__EXPORTER=jsonl`, `TARGET_TRACING__SAMPLING=0.1`).

    Off by default: with `exporter="none"` no provider is built and nothing is
    instrumented, so tracing costs nothing. See `target_service/tracing.py`.
    """

    exporter: Literal["none", "console", "otlp", "jsonl", "spool"] = "none"
    """Where spans go: nowhere, stdout, an OTLP/HTTP collector, a JSON-lines file, or a
    spool file that a harness run turns into JSON lines afterwards
    (`target_service/span_spool.py`: the cheapest to write)."""
    sampling: float = Field(default=1.0, ge=0.0, le=1.0)
    """Share of new traces recorded (ParentBased(TraceIdRatioBased)): a caller's
    `traceparent` decides for its own trace, sampled or not."""
    otlp_endpoint: str = "http://127.0.0.1:4318/v1/traces"
    """OTLP over HTTP (protobuf) traces endpoint, for `exporter="otlp"`."""
    jsonl_path: str = "spans.jsonl"
    """OTLP-JSON lines file for `exporter="jsonl"`, appended to; `{pid}` is replaced by the
    worker's process id (one file per worker), otherwise workers share the file."""
    spool_path: str = "spans.spool"
    """The spool file for `exporter="spool"`, appended to; `{pid}` as for `jsonl_path`."""
    excluded_urls: str = "/healthz,/readyz,/metrics"
    """Comma-separated regular expressions of URLs whose requests are not traced."""


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
    tracing: TracingSettings = TracingSettings()

    chart_timeout_s: float = Field(default=2.0, gt=0)
    kpi_debounce_s: float = Field(default=0.2, ge=0)
    kpi_max_delay_s: float = Field(default=1.0, gt=0)
    """Upper bound on how long a change waits for a KPI refresh under constant writes."""

    max_in_flight: int = Field(default=64, ge=1)
    """Requests one worker handles at once before it sheds (toggle `load_shedding`).
    Past the pool (10 connections) and the cores, more requests in flight only queue:
    at the ~5 ms a cached or indexed request takes, 64 is about 0.3 s of queue, well
    under a client's patience, and room for the bursts a paced load makes."""
    service_floor_ms: float = Field(default=0.0, ge=0)
    """A test and demonstration knob, off (0) by default: every request the shedding
    middleware handles (all but /healthz, /readyz, /metrics) first waits this long, in an
    `asyncio.sleep` (no CPU) inside its in-flight slot. It makes a starved service whose
    capacity is known by arithmetic: one worker completes at most `max_in_flight /
    service_floor_ms` requests a second, past which it sheds (`tests/e2e/test_capacity.py`
    checks that `harness capacity` finds the break there). Reported with the other
    settings (`target_settings_info`), so a run that used it says so."""

    gc_freeze: bool = True
    """After startup, move every object alive then into the interpreter's permanent
    generation (`gc.freeze()`, `runtime.freeze_startup_heap`). Imports, route tables and
    pydantic models are a few hundred thousand objects that live as long as the process;
    without it every generation-2 collection rescans them all, an ~80 ms stop of the
    event loop on a 2-core machine, and what triggers those collections is allocation,
    so they come more often under tracing (its spans are garbage soon after export).
    Both profiles freeze: it is the runtime's, not one of the optimizations compared."""

    gc_young_threshold: int | None = Field(default=10_000, ge=100)
    """Net container allocations between two collections of the youngest generation
    (`gc.set_threshold`; the interpreter's default is 700; None keeps it). At 700 a loaded
    service collected every ~16 requests, and what such a collection finds alive is the
    work in flight: requests awaiting the database, and a sampled request's spans waiting
    up to a second in the batch processor's queue. Those survivors are promoted, so the
    older generations fill and are collected too (a 1.5 ms stop of the event loop for
    generation 1, ~7 ms for generation 2, measured in a `mixed` run at 150 users). With
    more allocations between collections most of that has finished and died by
    refcount first. Both profiles use it, like `gc_freeze`. Memory cost: at most this
    many young objects more (about a megabyte)."""

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


# ---- the effective settings, as reported on /metrics (`target_settings_info`) -------------

DISTRIBUTION = "dashboard-perf-harness"
"""The installed distribution whose version the service reports."""

NOT_REPORTED = frozenset({"database_url", "api_key", "base_url", "host", "port"})
"""Fields never reported, whatever their type. The first three are secrets or
addresses (and excluded by type or name anyway: this list is the explicit
backstop). `host` and `port` say where the service listens, not how it
behaves, and the port is a fresh free port on every run: reporting it would
make every run's settings differ."""

SENSITIVE_WORDS = frozenset({"url", "uri", "dsn", "key", "token", "secret", "password",
                             "passwd", "credentials", "auth"})
"""A field whose name has one of these as a `_`-separated word is not reported
unless it is a number or a boolean (`toggle_auth_cache` is fine, a plain `str`
`auth_token` added later is not), so a secret typed as `str` does not leak."""

_SECRET_TYPES = (SecretStr, SecretBytes, _BaseUrl, _BaseMultiHostUrl, Url, MultiHostUrl)


def _reportable(name: str, value: object) -> bool:
    """False for secrets and addresses: by type, by name, and by a value that looks like a URL."""
    if name in NOT_REPORTED or isinstance(value, _SECRET_TYPES):
        return False
    if isinstance(value, (bool, int, float)):
        return True  # a number cannot carry a secret
    if SENSITIVE_WORDS.intersection(name.lower().split("_")):
        return False
    return not (isinstance(value, str) and "://" in value)


def _render(value: object) -> str:
    """A label value: booleans as true/false, floats as repr (`0.2`, `5.0`), enums by value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return _render(value.value)
    if isinstance(value, float):
        return repr(value)
    if value is None:
        return ""
    if isinstance(value, (list, tuple, set, frozenset)):
        return ",".join(_render(v) for v in value)
    return str(value)


def _flatten(model: BaseModel, prefix: str, out: dict[str, str]) -> None:
    for name in type(model).model_fields:
        value: Any = getattr(model, name)
        if not _reportable(name, value):
            continue
        if isinstance(value, BaseModel):
            _flatten(value, f"{prefix}{name}_", out)
            continue
        key = f"{prefix}{name}"
        if key in out:
            raise ValueError(f"two settings report as {key!r}")
        out[key] = _render(value)


def service_version() -> str:
    """The package version this process runs ("unknown" when not installed)."""
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def effective_settings(settings: Settings) -> dict[str, str]:
    """Every setting in force, flattened to `{label: value}`, secrets and addresses left out.

    What the harness records as the run's target configuration, so a toggle
    overridden in the environment shows in the run record instead of being
    assumed from the profile's name. Built by walking the models, not by
    listing fields, so a new setting is reported without anyone remembering
    to; and filtered by type and name (`_reportable`), so a new secret is not.

    Nested models flatten to `<field>_<subfield>`, except the toggles, which
    are the effective ones (after the profile) as `toggle_<name>`; the
    ElevenLabs block is the one the client really uses (`Settings.upstream`,
    the toggles applied). `version` is the package version.
    """
    out: dict[str, str] = {}
    for name in type(settings).model_fields:
        value: Any = getattr(settings, name)
        if name == "toggles":
            _flatten(settings.flags, "toggle_", out)
        elif name == "elevenlabs":
            _flatten(settings.upstream, "elevenlabs_", out)
        elif not _reportable(name, value):
            continue
        elif isinstance(value, BaseModel):
            _flatten(value, f"{name}_", out)
        else:
            out[name] = _render(value)
    out["version"] = service_version()
    return out
