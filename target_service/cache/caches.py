"""All of a process's caches, built from settings in the lifespan.

One object to hand to the invalidation listener and the write path, so
"this user's data changed" and "the change feed was lost" each have exactly
one meaning everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from opentelemetry.trace import Tracer

from target_service.cache.agents import AgentCache
from target_service.cache.dashboard import DashboardCache
from target_service.cache.memory import (
    CacheMetricFamilies,
    MemoryCache,
    tags_from_key,
    user_tag,
)
from target_service.settings import Settings


@dataclass
class Caches:
    """The dashboard, agent and auth caches (each None when its toggle is off).

    The auth cache maps an API key's hash to its user, each entry tagged with
    `user_tag(user id)` so one user's keys can be forgotten at once (`evict_api_keys`).
    """

    dashboard: DashboardCache | None = None
    agents: AgentCache | None = None
    auth: MemoryCache | None = None

    @classmethod
    def build(cls, settings: Settings, families: CacheMetricFamilies,
              tracer: Tracer | None = None) -> Caches:
        """Each cache with its TTLs and metrics; `tracer` traces their lookups (None: not)."""
        s, flags = settings.cache, settings.flags
        dashboard = agents = auth = None
        if flags.response_cache:
            dashboard = DashboardCache(
                MemoryCache("dashboard", max_entries=s.max_entries, max_bytes=s.max_bytes,
                            tags_of=tags_from_key(2), metrics=families, tracer=tracer),
                overview_ttl=s.overview_ttl_s, overview_soft_ttl=s.overview_soft_ttl_s,
                analytics_ttl=s.analytics_ttl_s, analytics_soft_ttl=s.analytics_soft_ttl_s)
        if flags.config_cache or flags.response_cache:
            agents = AgentCache(
                MemoryCache("agents", max_entries=s.max_entries, max_bytes=s.max_bytes,
                            tags_of=tags_from_key(2), metrics=families, tracer=tracer),
                info_ttl=s.agent_info_ttl_s, stats_ttl=s.agent_stats_ttl_s,
                config_fresh=settings.config_fresh_s, config_retention=settings.config_retention_s)
        if flags.auth_cache:
            auth = MemoryCache("auth", max_entries=100_000, max_bytes=16 << 20,
                               default_ttl=s.auth_ttl_s, metrics=families, tracer=tracer)
        return cls(dashboard, agents, auth)

    @property
    def enabled(self) -> bool:
        return any((self.dashboard, self.agents, self.auth))

    def evict_user(self, user_id: int) -> int:
        """A user's data changed: drop everything derived from it."""
        n = 0
        if self.dashboard is not None:
            n += self.dashboard.evict_user(user_id)
        if self.agents is not None:
            n += self.agents.evict_user(user_id)
        return n

    def evict_agent_list(self, user_id: int) -> int:
        """Only the stored ElevenLabs snapshots of a user's agents changed: drop the one
        entry that holds them (the agent list); overviews, analytics and stats stay."""
        return 0 if self.agents is None else self.agents.evict_info(user_id)

    def evict_api_keys(self, user_id: int | None) -> int:
        """A user's API key or name changed, or the user is gone: forget the key lookups
        that resolve to them (`None`: every user's). Their data entries stay: a key is
        not data, and the old key is refused at authentication anyway."""
        if self.auth is None:
            return 0
        return self.auth.clear() if user_id is None else self.auth.invalidate_tag(
            user_tag(user_id))

    def clear_derived(self) -> int:
        """The change feed was lost: drop everything derived from our rows.

        That includes the API-key lookups (a key changed or a user removed while the
        feed was down would otherwise be honoured until the TTL); the upstream
        configurations do not come from our rows, so they stay.
        """
        n = 0
        if self.dashboard is not None:
            n += self.dashboard.clear()
        if self.agents is not None:
            n += self.agents.clear_user_data()
        if self.auth is not None:
            n += self.auth.clear()
        return n

    async def close(self) -> None:
        for cache in (self.dashboard and self.dashboard.cache, self.agents and self.agents.cache,
                      self.auth):
            if cache is not None:
                await cache.close()
