"""AgentCache: what the agents page needs, each part with the TTL it deserves.

* basic agent info per user (names, statuses, stored snapshots): changes
  rarely; long TTL, evicted by the user's change notifications;
* 30-day stats per user: change with every call; short TTL, evicted likewise;
* ElevenLabs configurations per agent: not ours, no change feed; fresh for
  `config_fresh_s`, kept as a fallback for `config_retention_s`, read and
  filled for a whole page in one pass (`configs` / `store_configs`).

Info and stats keys carry the user id at position 2 (tag-evictable per user);
configuration keys are per ElevenLabs agent id, shared by nobody else.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import Any

from target_service.cache.memory import CacheStatus, Generation, MemoryCache, user_tag
from target_service.tracing import lookup_event, recording_span

SCHEMA_VERSION = 1


def batch_result(asked: int, found: Iterable[tuple[Any, CacheStatus]]) -> dict[str, Any]:
    """Span attributes of a batch lookup: counts, and the worst `cache.result` among them."""
    statuses = [status for _, status in found]
    stale = sum(1 for s in statuses if s is CacheStatus.STALE)
    misses = asked - len(statuses)
    result = "miss" if misses else "stale" if stale else "hit"
    return {"cache.result": result, "cache.keys": asked, "cache.hits": len(statuses) - stale,
            "cache.stale": stale, "cache.misses": misses}


class AgentCache:
    """Agent info, stats and upstream configurations."""

    def __init__(self, cache: MemoryCache, *, info_ttl: float, stats_ttl: float,
                 config_fresh: float, config_retention: float) -> None:
        self.cache = cache
        self.info_ttl = info_ttl
        self.stats_ttl = stats_ttl
        self.config_fresh = config_fresh
        self.config_retention = config_retention

    async def info(self, user_id: int,
                   loader: Callable[[], Awaitable[list[dict]]]) -> list[dict]:
        value, _ = await self.cache.get_or_load(("agent_info", SCHEMA_VERSION, user_id), loader,
                                                ttl=self.info_ttl, soft_ttl=self.info_ttl / 5)
        return value

    async def stats(self, user_id: int,
                    loader: Callable[[], Awaitable[dict[int, dict]]]) -> dict[int, dict]:
        value, _ = await self.cache.get_or_load(("agent_stats", SCHEMA_VERSION, user_id), loader,
                                                ttl=self.stats_ttl, soft_ttl=self.stats_ttl / 4)
        return value

    def configs(self, agent_ids: Iterable[str]) -> dict[str, tuple[dict[str, Any], CacheStatus]]:
        """Cached configurations of many agents in one pass: {id: (entry, HIT|STALE)}.

        An entry is `{"config": ..., "fetched_at": datetime}`; HIT means younger
        than the freshness TTL (as good as live), STALE means only a fallback.
        """
        keys = [("config", i) for i in agent_ids]
        found = self.cache.get_many(keys)
        if self.cache.tracer is not None and (span := recording_span()) is not None:
            lookup_event(span, self.cache.name, {  # an event on the request's span
                "cache.name": self.cache.name, "cache.namespace": "config",
                **batch_result(len(keys), found.values())})
        return {key[1]: value for key, value in found.items()}

    def generation(self) -> Generation:
        return self.cache.generation()

    def store_configs(self, configs: dict[str, dict[str, Any]], fetched_at: datetime,
                      generation: Generation | None = None) -> int:
        """Fill the cache with freshly fetched configurations (one pass)."""
        return self.cache.set_many(
            {("config", agent_id): {"config": config, "fetched_at": fetched_at}
             for agent_id, config in configs.items()},
            ttl=self.config_retention, soft_ttl=self.config_fresh, generation=generation)

    def evict_user(self, user_id: int) -> int:
        return self.cache.invalidate_tag(user_tag(user_id))

    def evict_info(self, user_id: int) -> int:
        """Drop one user's agent list (its stored snapshots changed); 1 if it was cached."""
        return int(self.cache.invalidate(("agent_info", SCHEMA_VERSION, user_id)))

    def clear_user_data(self) -> int:
        """Drop every user's info and stats (configs are not derived from our data)."""
        return (self.cache.invalidate_prefix(("agent_info",))
                + self.cache.invalidate_prefix(("agent_stats",)))
