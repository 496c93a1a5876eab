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
it is not live. A cached configuration in the last fifth of its freshness is
refreshed ahead of expiry by a background job, so busy pages rarely wait for
ElevenLabs at all. A live fetch refreshes the stored snapshot through the job
queue (off the request path, deduplicated per agent, and only when the
snapshot is old or different), so the database fallback stays useful.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from target_service.cache.agents import AgentCache
from target_service.db.pool import Database
from target_service.db.queries import agents as q
from target_service.elevenlabs.client import ElevenLabsClient
from target_service.jobs import JobQueue
from target_service.services.agents import ResolvedConfig, Row, snapshot_of
from target_service.settings import Settings

log = logging.getLogger(__name__)


class UpstreamConfigResolver:
    """Resolves configurations live from ElevenLabs, with cache and snapshot fallbacks."""

    def __init__(self, client: ElevenLabsClient, db: Database, settings: Settings,
                 cache: AgentCache | None, jobs: JobQueue | None) -> None:
        self.client = client
        self.db = db
        self.settings = settings
        self.cache = cache
        self.jobs = jobs

    async def resolve(self, agents: list[Row]) -> dict[str, ResolvedConfig]:
        ids = [r["elevenlabs_agent_id"] for r in agents]
        rows = {r["elevenlabs_agent_id"]: r for r in agents}
        resolved: dict[str, ResolvedConfig] = {}
        cached = self.cache.configs(ids) if self.cache is not None else {}
        ahead = datetime.now(UTC) - timedelta(seconds=0.8 * self.settings.config_fresh_s)
        for agent_id, (entry, status) in cached.items():
            if status == "HIT":
                resolved[agent_id] = ResolvedConfig(entry["config"], "live", entry["fetched_at"],
                                                    cached=True)
                if entry["fetched_at"] < ahead:
                    self._refresh_ahead(rows[agent_id])
        missing = [r for r in agents if r["elevenlabs_agent_id"] not in resolved]
        if missing:
            live, fetched_at = await self.fetch_live(missing)
            for row in missing:
                agent_id = row["elevenlabs_agent_id"]
                if agent_id in live:
                    resolved[agent_id] = ResolvedConfig(live[agent_id], "live", fetched_at)
                elif agent_id in cached:
                    entry = cached[agent_id][0]
                    resolved[agent_id] = ResolvedConfig(entry["config"], "cache",
                                                        entry["fetched_at"])
                else:
                    resolved[agent_id] = snapshot_of(row)
        for agent_id in ids:
            self.client.metrics.record_fallback(resolved[agent_id].source)
        return resolved

    def _refresh_ahead(self, row: Row) -> None:
        """Fetch a soon-to-expire configuration in the background (deduplicated)."""
        if self.jobs is None:
            return
        self.jobs.submit(("config_refresh", row["elevenlabs_agent_id"]), "config_refresh",
                         lambda: self.fetch_live([row]), rerun_if_running=False)

    async def fetch_live(self, rows: list[Row]) -> tuple[dict[str, dict[str, Any]], datetime]:
        """Fetch from ElevenLabs now, fill the cache and queue snapshot writes.

        Returns the configurations that arrived (by agent id) and when; the
        agents missing from it failed. Used by page requests and refresh-ahead.
        """
        generation = self.cache.generation() if self.cache is not None else None
        results = await self.client.get_agents(r["elevenlabs_agent_id"] for r in rows)
        now = datetime.now(UTC)
        live = {i: r.config.to_snapshot() for i, r in results.items() if r.ok}
        if self.cache is not None and live:
            self.cache.store_configs(live, now, generation)
        for row in rows:
            if (config := live.get(row["elevenlabs_agent_id"])) is not None:
                self._maybe_store_snapshot(row, config, now)
        return live, now

    def _maybe_store_snapshot(self, row: Row, snapshot: dict[str, Any],
                              now: datetime) -> None:
        """Queue a snapshot write when the stored one is missing, old or different."""
        if self.jobs is None:
            return
        stored = _as_dict(row["config_snapshot"])
        age_limit = timedelta(seconds=self.settings.snapshot_refresh_s)
        updated = row["snapshot_updated_at"]
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
