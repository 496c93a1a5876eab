"""Fills the caches before users ask, most active users first.

At start-up the busiest users (by 30-day calls, from the KPI view) get their
overview, default analytics and agent info/stats loaded through the same
cache-first paths requests use, as background jobs in order of activity: a
fresh process answers its heaviest users from memory within seconds, and
requests never wait for warming (jobs run beside them; the job queue is
bounded and drops work rather than block).

After a KPI refresh evicts a hot user's overview, the same job re-warms it,
so the next request is a hit again.

It lives in `services/`, not `cache/`, because it calls the services: the
caches stay a lower layer that never imports a service (the invalidation
listener is handed `rewarm_overview` as a plain callback).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from target_service.db.pool import Database
from target_service.db.queries import dashboard as q
from target_service.domain import KPI_WINDOW_DAYS
from target_service.jobs import JobQueue
from target_service.services.agents import AgentsService
from target_service.services.dashboard import DashboardService

log = logging.getLogger(__name__)


class Warmer:
    """Submits warm-up jobs for users to the service's job queue."""

    def __init__(self, db: Database, jobs: JobQueue, dashboard: DashboardService,
                 agents: AgentsService) -> None:
        self.db = db
        self.jobs = jobs
        self.dashboard = dashboard
        self.agents = agents

    async def top_users(self, limit: int) -> list[int]:
        rows = await self.db.fetch("warm_top_users", q.TOP_USERS, limit)
        return [r["user_id"] for r in rows]

    async def warm_top(self, limit: int) -> int:
        """Queue the busiest `limit` users, busiest first; returns how many were queued."""
        users = await self.top_users(limit) if limit else []
        for user_id in users:  # equal priorities run in submission order: busiest first
            self.jobs.submit(("warm", user_id), "warm_user", self._job(user_id))
        log.info("queued cache warming for %d users", len(users))
        return len(users)

    def rewarm_overview(self, user_id: int) -> None:
        """After an eviction of a hot overview: load it again in the background."""
        self.jobs.submit(("warm_overview", user_id), "warm_overview",
                         lambda: self.dashboard.overview_body(user_id))

    def _job(self, user_id: int):
        async def warm() -> None:
            to = datetime.now(UTC).date()
            await self.dashboard.overview_body(user_id)
            await self.dashboard.analytics_body(
                user_id, to - timedelta(days=KPI_WINDOW_DAYS - 1), to, "day")
            await self.agents.list_without_configs(user_id)

        return warm
