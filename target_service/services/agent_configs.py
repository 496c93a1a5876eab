"""Where an agent's ElevenLabs configuration comes from, degrading step by step.

For each agent of a page, in order:

1. **live**: a configuration fetched from ElevenLabs within `config_fresh_s`
   (either just now, or a fresh copy in the in-memory cache: `config_cached`
   tells which). Everything not fresh is fetched in one parallel batch, inside
   the page budget.
2. **cache**: the fetch failed, but memory still holds an older copy (kept
   for `config_retention_s`).
3. **database**: the snapshot stored in `agents.config_snapshot` by an
   earlier successful fetch.
4. **unavailable**: never seen; the agent is still listed with its DB data.

The page always answers 200; `degraded` and `fallback_count` say how much of
it is not live. A live fetch refreshes the stored snapshot through the job
queue (off the request path, deduplicated per agent, and only when the
snapshot is old or different), so the database fallback stays useful.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from target_service.cache.memory import MemoryCache
from target_service.db.pool import Database
from target_service.db.queries import agents as q
from target_service.elevenlabs.client import ElevenLabsClient
from target_service.elevenlabs.models import AgentConfig
from target_service.jobs import JobQueue
from target_service.services.agents import ResolvedConfig, snapshot_of
from target_service.settings import Settings

log = logging.getLogger(__name__)


class UpstreamConfigResolver:
    """Resolves configurations live from ElevenLabs, with cache and snapshot fallbacks."""

    def __init__(self, client: ElevenLabsClient, db: Database, settings: Settings,
                 cache: MemoryCache | None, jobs: JobQueue | None) -> None:
        self.client = client
        self.db = db
        self.settings = settings
        self.cache = cache
        self.jobs = jobs

    async def resolve(self, agents: list[asyncpg.Record]) -> dict[str, ResolvedConfig]:
        ids = [r["elevenlabs_agent_id"] for r in agents]
        rows = {r["elevenlabs_agent_id"]: r for r in agents}
        resolved: dict[str, ResolvedConfig] = {}
        cached: dict[str, tuple[dict, str]] = {}
        if self.cache is not None:
            for (_, agent_id), (entry, status) in self.cache.get_many(
                    [("config", i) for i in ids]).items():
                cached[agent_id] = (entry, str(status))
                if str(status) == "HIT":
                    resolved[agent_id] = ResolvedConfig(
                        entry["config"], "live", entry["fetched_at"], cached=True)
        missing = [i for i in ids if i not in resolved]
        if missing:
            generation = self.cache.generation() if self.cache is not None else None
            results = await self.client.get_agents(missing)
            now = datetime.now(UTC)
            for agent_id in missing:
                result = results[agent_id]
                if result.ok:
                    config = result.config.to_snapshot()
                    resolved[agent_id] = ResolvedConfig(config, "live", now)
                    if self.cache is not None:
                        self.cache.set(("config", agent_id), {"config": config, "fetched_at": now},
                                       soft_ttl=self.settings.config_fresh_s,
                                       ttl=self.settings.config_retention_s,
                                       generation=generation)
                    self._maybe_store_snapshot(rows[agent_id], result.config, now)
                elif agent_id in cached:
                    entry = cached[agent_id][0]
                    resolved[agent_id] = ResolvedConfig(entry["config"], "cache",
                                                        entry["fetched_at"])
                else:
                    resolved[agent_id] = snapshot_of(rows[agent_id])
        for agent_id in ids:
            self.client.metrics.record_fallback(resolved[agent_id].source)
        return resolved

    def _maybe_store_snapshot(self, row: asyncpg.Record, config: AgentConfig,
                              now: datetime) -> None:
        """Queue a snapshot write when the stored one is missing, old or different."""
        if self.jobs is None:
            return
        stored = _as_dict(row["config_snapshot"])
        age_limit = timedelta(seconds=self.settings.snapshot_refresh_s)
        updated = row["snapshot_updated_at"]
        snapshot = config.to_snapshot()
        if stored == snapshot and updated is not None and now - updated < age_limit:
            return
        agent_id = row["elevenlabs_agent_id"]
        self.jobs.submit(("snapshot", agent_id), "store_snapshot",
                         lambda: self._store(agent_id, snapshot))

    async def _store(self, agent_id: str, snapshot: dict[str, Any]) -> None:
        await self.db.fetch("save_snapshot", q.SAVE_SNAPSHOT, agent_id, json.dumps(snapshot))


def _as_dict(raw: object) -> dict | None:
    if raw is None:
        return None
    return json.loads(raw) if isinstance(raw, str) else raw  # type: ignore[return-value]
