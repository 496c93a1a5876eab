"""The agents page: database stats plus each agent's ElevenLabs configuration.

Where a configuration comes from is pluggable (`ConfigResolver`): with
ElevenLabs off, from the stored snapshot only; otherwise live first, falling
back to cache, then the snapshot, then "unavailable" (services/agent_configs.py),
always answering 200 with the database data. With an `AgentCache` (optimized
profile) the agent list and the 30-day stats are cached per user and evicted
when that user's data changes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from target_service import schemas
from target_service.cache.agents import AgentCache
from target_service.db.pool import Database
from target_service.db.queries import agents as q
from target_service.db.queries import dashboard as dq
from target_service.domain import agent_stats, kpi_window_start
from target_service.errors import NotFound
from target_service.settings import Settings

Row = Mapping[str, Any]


@dataclass(frozen=True)
class ResolvedConfig:
    """An agent's configuration and where it came from."""

    config: dict[str, Any] | None
    source: str  # live | cache | database | unavailable
    updated_at: datetime | None = None
    cached: bool = False
    """A live configuration served from the in-memory cache within its freshness TTL."""


class ConfigResolver(Protocol):
    """Finds configurations for agents (keyed by ElevenLabs agent id)."""

    async def resolve(self, agents: list[Row]) -> dict[str, ResolvedConfig]: ...


def snapshot_of(row: Row) -> ResolvedConfig:
    """The stored snapshot as a fallback: `database`, or `unavailable` when never synced."""
    raw = row["config_snapshot"]
    if raw is None:
        return ResolvedConfig(None, "unavailable")
    config = json.loads(raw) if isinstance(raw, str) else raw
    return ResolvedConfig(config, "database", row["snapshot_updated_at"])


class SnapshotResolver:
    """Resolves every agent from its stored snapshot (no upstream calls)."""

    async def resolve(self, agents: list[Row]) -> dict[str, ResolvedConfig]:
        return {r["elevenlabs_agent_id"]: snapshot_of(r) for r in agents}


class AgentsService:
    """Lists a user's agents and shows one, with stats and configuration."""

    def __init__(self, db: Database, settings: Settings, resolver: ConfigResolver,
                 cache: AgentCache | None = None) -> None:
        self.db = db
        self.flags = settings.flags
        self.resolver = resolver
        self.cache = cache

    async def list(self, user_id: int) -> schemas.AgentsPage:
        rows = await self._agents(user_id)
        stats = await self._stats(user_id, [r["id"] for r in rows])
        configs = await self.resolver.resolve(rows)
        details = [self._detail(r, stats.get(r["id"]), configs[r["elevenlabs_agent_id"]])
                   for r in rows]
        fallback = sum(1 for d in details if d.config_source != "live")
        return schemas.AgentsPage(user_id=user_id, agents=details, degraded=fallback > 0,
                                  fallback_count=fallback)

    async def list_without_configs(self, user_id: int) -> None:
        """Load (and so cache) the user's agents and stats; used by cache warming."""
        rows = await self._agents(user_id)
        await self._stats(user_id, [r["id"] for r in rows])

    async def get(self, user_id: int, agent_id: int) -> schemas.AgentResponse:
        if self.cache is not None:  # the user's agent list is cached: no query
            rows = await self._agents(user_id)
            row = next((r for r in rows if r["id"] == agent_id), None)
            # cached stats are the user's, every agent's: a load for one agent would
            # leave the others without stats in the list (batch_queries off)
            ids = [r["id"] for r in rows]
        else:
            row = await self.db.fetchrow("agent_by_id", q.AGENT_BY_ID, user_id, agent_id)
            ids = [agent_id]
        if row is None:
            raise NotFound(f"agent {agent_id} not found")
        stats = (await self._stats(user_id, ids)).get(agent_id)
        config = (await self.resolver.resolve([row]))[row["elevenlabs_agent_id"]]
        detail = self._detail(row, stats, config)
        return schemas.AgentResponse(user_id=user_id, agent=detail,
                                     degraded=detail.config_source != "live")

    async def _agents(self, user_id: int) -> list[Row]:
        async def load() -> list[dict]:
            rows = await self.db.fetch("agents_of_user", q.AGENTS_OF_USER, user_id)
            return [dict(r) for r in rows]

        if self.cache is None:
            return await load()
        return await self.cache.info(user_id, load)

    async def _stats(self, user_id: int, agent_ids: list[int]) -> dict[int, Row]:
        start = kpi_window_start()

        async def load() -> dict[int, dict]:
            if self.flags.batch_queries:
                rows = await self.db.fetch("agent_stats_batch", q.AGENT_STATS_BATCH, user_id,
                                           start.date())
                return {r["agent_id"]: dict(r) for r in rows}
            async with self.db.acquire() as conn:  # the N+1 the optimized profile removes
                return {aid: dict(await self.db.fetchrow(
                            "agent_stats_naive", dq.NAIVE_AGENT_STATS, aid, start, conn=conn))
                        for aid in agent_ids}

        if self.cache is None:
            return await load()
        return await self.cache.stats(user_id, load)

    @staticmethod
    def _detail(row: Row, stats: Row | None, config: ResolvedConfig) -> schemas.AgentDetail:
        if stats is None:
            s = agent_stats(0, 0, 0, 0)
        else:
            s = agent_stats(int(stats["calls"]), int(stats["completed"]),
                            int(stats["duration"]), stats["cost"])
        return schemas.AgentDetail(
            agent_id=row["id"], elevenlabs_agent_id=row["elevenlabs_agent_id"], name=row["name"],
            status=row["status"], stats=s, config=config.config, config_source=config.source,
            config_cached=config.cached, config_updated_at=config.updated_at)

