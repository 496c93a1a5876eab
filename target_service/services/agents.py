"""The agents page: database stats plus each agent's ElevenLabs configuration.

Where a configuration comes from is pluggable (`ConfigResolver`): the
foundation resolves from the stored snapshot only; the ElevenLabs integration
resolves live first and falls back to cache, then the snapshot, then
"unavailable", always answering 200 with the database data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import asyncpg

from target_service.api import schemas
from target_service.db.pool import Database
from target_service.db.queries import agents as q
from target_service.db.queries import dashboard as dq
from target_service.errors import NotFound
from target_service.services.dashboard import agent_stats, kpi_window_start
from target_service.settings import Settings


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

    async def resolve(self, agents: list[asyncpg.Record]) -> dict[str, ResolvedConfig]: ...


def snapshot_of(row: asyncpg.Record) -> ResolvedConfig:
    """The stored snapshot as a fallback: `database`, or `unavailable` when never synced."""
    raw = row["config_snapshot"]
    if raw is None:
        return ResolvedConfig(None, "unavailable")
    config = json.loads(raw) if isinstance(raw, str) else raw
    return ResolvedConfig(config, "database", row["snapshot_updated_at"])


class SnapshotResolver:
    """Resolves every agent from its stored snapshot (no upstream calls)."""

    async def resolve(self, agents: list[asyncpg.Record]) -> dict[str, ResolvedConfig]:
        return {r["elevenlabs_agent_id"]: snapshot_of(r) for r in agents}


class AgentsService:
    """Lists a user's agents and shows one, with stats and configuration."""

    def __init__(self, db: Database, settings: Settings, resolver: ConfigResolver) -> None:
        self.db = db
        self.flags = settings.flags
        self.resolver = resolver

    async def list(self, user_id: int) -> schemas.AgentsPage:
        start = kpi_window_start().date()
        async with self.db.acquire() as conn:
            rows = await self.db.fetch("agents_of_user", q.AGENTS_OF_USER, user_id, conn=conn)
            stats = await self._stats(conn, user_id, [r["id"] for r in rows], start)
        configs = await self.resolver.resolve(rows)
        details = [self._detail(r, stats.get(r["id"]), configs[r["elevenlabs_agent_id"]])
                   for r in rows]
        fallback = sum(1 for d in details if d.config_source != "live")
        return schemas.AgentsPage(user_id=user_id, agents=details, degraded=fallback > 0,
                                  fallback_count=fallback)

    async def get(self, user_id: int, agent_id: int) -> schemas.AgentResponse:
        start = kpi_window_start().date()
        async with self.db.acquire() as conn:
            row = await self.db.fetchrow("agent_by_id", q.AGENT_BY_ID, user_id, agent_id,
                                         conn=conn)
            if row is None:
                raise NotFound(f"agent {agent_id} not found")
            stats = await self.db.fetchrow("agent_stats_one", q.AGENT_STATS_ROLLUP, user_id,
                                           agent_id, start, conn=conn)
        config = (await self.resolver.resolve([row]))[row["elevenlabs_agent_id"]]
        detail = self._detail(row, stats, config)
        return schemas.AgentResponse(user_id=user_id, agent=detail,
                                     degraded=detail.config_source != "live")

    async def _stats(self, conn: asyncpg.Connection, user_id: int, agent_ids: list[int],
                     start) -> dict[int, asyncpg.Record]:
        if self.flags.batch_queries:
            rows = await self.db.fetch("agent_stats_batch", q.AGENT_STATS_BATCH, user_id, start,
                                       conn=conn)
            return {r["agent_id"]: r for r in rows}
        window = kpi_window_start()
        return {aid: await self.db.fetchrow("agent_stats_naive", dq.NAIVE_AGENT_STATS, aid,
                                            window, conn=conn)
                for aid in agent_ids}

    @staticmethod
    def _detail(row: asyncpg.Record, stats: asyncpg.Record | None,
                config: ResolvedConfig) -> schemas.AgentDetail:
        if stats is None:
            s = agent_stats(0, 0, 0, 0)
        else:
            s = agent_stats(int(stats["calls"]), int(stats["completed"]),
                            int(stats["duration"]), stats["cost"])
        return schemas.AgentDetail(
            agent_id=row["id"], elevenlabs_agent_id=row["elevenlabs_agent_id"], name=row["name"],
            status=row["status"], stats=s, config=config.config, config_source=config.source,
            config_cached=config.cached, config_updated_at=config.updated_at)
