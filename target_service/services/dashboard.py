"""Overview and analytics: the logic between the routers and the SQL.

Both profiles run through here; the toggles decide *how* the data is fetched
(view or raw aggregates, one batch query or N+1, parallel or sequential
charts), never *what* is returned: `tests/target_service/test_profiles.py`
holds them to identical responses.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
from opentelemetry import trace

from target_service import schemas
from target_service.cache.dashboard import DashboardCache
from target_service.db.pool import Database
from target_service.db.queries import dashboard as q
from target_service.domain import (
    KPI_WINDOW_DAYS,
    activity_item,
    agent_stats,
    kpi_window_start,
    money,
    ratio,
    utc_midnight,
)
from target_service.encoding import encode
from target_service.errors import InvalidParameter
from target_service.settings import Settings

RECENT_ACTIVITY_LIMIT = 20


class _Uncacheable(Exception):
    """Carries a partial analytics result past the cache without storing it."""

    def __init__(self, result: schemas.Analytics) -> None:
        super().__init__("partial result")
        self.result = result


class DashboardService:
    """Builds the overview and analytics responses for one user."""

    def __init__(self, db: Database, settings: Settings,
                 cache: DashboardCache | None = None,
                 tracer: trace.Tracer | None = None) -> None:
        self.db = db
        self.settings = settings
        self.flags = settings.flags
        self.cache = cache
        self.tracer = tracer  # for the `serialize` spans of encoded bodies

    # ---- encoded bodies, cache-first when the profile caches --------------------

    async def overview_body(self, user_id: int) -> tuple[bytes, str | None]:
        """The overview as JSON bytes and its X-Cache status (None when not cached)."""
        async def load() -> bytes:
            return encode(await self.overview(user_id), self.tracer)

        if self.cache is None:
            return await load(), None
        body, status = await self.cache.overview(user_id, load)
        return body, str(status)

    async def analytics_body(self, user_id: int, from_date: date, to_date: date,
                             granularity: str) -> tuple[bytes, str | None]:
        """Analytics as JSON bytes; a partial answer (a chart timed out) is never cached."""
        async def load() -> bytes:
            result = await self.analytics(user_id, from_date, to_date, granularity)
            if result.partial:
                raise _Uncacheable(result)
            return encode(result, self.tracer)

        if self.cache is None:
            result = await self.analytics(user_id, from_date, to_date, granularity)
            return encode(result, self.tracer), None
        try:
            body, status = await self.cache.analytics(user_id, from_date, to_date, granularity,
                                                      load)
        except _Uncacheable as partial:
            return encode(partial.result, self.tracer), "MISS"
        return body, str(status)

    # ---- overview -------------------------------------------------------------

    async def overview(self, user_id: int) -> schemas.Overview:
        """KPIs, agents with stats and recent activity for the 30-day window."""
        start = kpi_window_start()
        async with self.db.acquire() as conn:
            kpis = await self._kpis(conn, user_id, start)
            agents = await self._agents_with_stats(conn, user_id, start)
            recent = await self.db.fetch("recent_activity", q.RECENT_ACTIVITY, user_id, start,
                                         RECENT_ACTIVITY_LIMIT, conn=conn)
        return schemas.Overview(user_id=user_id, kpis=kpis, agents=agents,
                                recent_activity=[activity_item(r) for r in recent])

    async def _kpis(self, conn: asyncpg.Connection, user_id: int,
                    start: datetime) -> schemas.Kpis:
        row: dict[str, Any] | None = None
        if self.flags.kpi_view:
            rec = await self.db.fetchrow("kpi_view", q.KPI_FROM_VIEW, user_id, conn=conn)
            # a view refreshed before midnight holds yesterday's window: recompute
            if rec is not None and rec["window_start"] == start:
                row = dict(rec)
        if row is None:
            calls = await self.db.fetchrow("kpi_calls_raw", q.NAIVE_CALL_KPIS, user_id, start,
                                           conn=conn)
            leads = await self.db.fetchrow("kpi_leads_raw", q.NAIVE_LEAD_KPIS, user_id, start,
                                           conn=conn)
            row = {**dict(calls), **dict(leads), "refreshed_at": datetime.now(UTC)}
        total, completed = row["total_calls"], row["completed_calls"]
        duration = int(row["total_duration_seconds"])
        return schemas.Kpis(
            window_start=start, total_calls=total, completed_calls=completed,
            success_rate=ratio(completed, total), total_duration_seconds=duration,
            avg_call_duration_seconds=round(duration / total, 2) if total else 0.0,
            total_cost=money(row["total_cost"]), active_agents=row["active_agents"],
            last_call_at=row["last_call_at"], new_leads=row["new_leads"],
            qualified_leads=row["qualified_leads"],
            avg_lead_score=(round(int(row["score_sum"]) / row["scored_leads"], 2)
                            if row["scored_leads"] else None),
            as_of=row["refreshed_at"],
        )

    async def _agents_with_stats(self, conn: asyncpg.Connection, user_id: int,
                                 start: datetime) -> list[schemas.AgentSummary]:
        if self.flags.batch_queries:
            rows = await self.db.fetch("agents_with_stats", q.AGENTS_WITH_STATS, user_id,
                                       start.date(), conn=conn)
            stats = {r["id"]: r for r in rows}
        else:
            rows = await self.db.fetch("agents_naive", q.NAIVE_AGENTS, user_id, conn=conn)
            stats = {}
            for r in rows:  # the N+1 the optimized profile removes
                stats[r["id"]] = await self.db.fetchrow(
                    "agent_stats_naive", q.NAIVE_AGENT_STATS, r["id"], start, conn=conn)
        return [
            schemas.AgentSummary(
                agent_id=r["id"], elevenlabs_agent_id=r["elevenlabs_agent_id"], name=r["name"],
                status=r["status"],
                stats=agent_stats(int(stats[r["id"]]["calls"]), int(stats[r["id"]]["completed"]),
                                  int(stats[r["id"]]["duration"]), stats[r["id"]]["cost"]),
            )
            for r in rows
        ]

    # ---- analytics ------------------------------------------------------------

    def validate_range(self, from_date: date | None, to_date: date | None) -> tuple[date, date]:
        """Default to the last 30 days; reject inverted or over-wide ranges (422)."""
        today = datetime.now(UTC).date()
        to_date = to_date or today
        from_date = from_date or to_date - timedelta(days=KPI_WINDOW_DAYS - 1)
        if from_date > to_date:
            raise InvalidParameter("'from' must not be after 'to'",
                                   details={"from": str(from_date), "to": str(to_date)})
        if (to_date - from_date).days + 1 > self.settings.max_range_days:
            raise InvalidParameter(
                f"date range is limited to {self.settings.max_range_days} days",
                details={"from": str(from_date), "to": str(to_date)})
        return from_date, to_date

    async def analytics(self, user_id: int, from_date: date, to_date: date,
                        granularity: str) -> schemas.Analytics:
        """Four charts; in the optimized profile concurrently, each on its own connection."""
        start, end = utc_midnight(from_date), utc_midnight(to_date + timedelta(days=1))
        charts: dict[str, Callable[[asyncpg.Connection], Awaitable[list]]] = {
            "leads_over_time": lambda c: self._leads_over_time(c, user_id, start, end,
                                                               granularity),
            "lead_quality": lambda c: self._lead_quality(c, user_id, start, end),
            "calls_by_status": lambda c: self._calls_by_status(c, user_id, start, end),
            "agent_hourly_load": lambda c: self._hourly_load(c, user_id, from_date, to_date,
                                                             start, end),
        }
        if self.flags.parallel_charts:
            results = await asyncio.gather(*(self._chart(fn) for fn in charts.values()))
        else:
            results = []
            async with self.db.acquire() as conn:
                for fn in charts.values():
                    results.append(await self._chart(fn, conn))
        values = dict(zip(charts, results, strict=True))
        partial = [name for name, value in values.items() if value is None]
        return schemas.Analytics(
            user_id=user_id, from_date=from_date, to_date=to_date, granularity=granularity,
            charts=schemas.Charts(**{k: v for k, v in values.items() if v is not None}),
            partial=bool(partial), partial_charts=partial,
        )

    async def _chart(self, fn: Callable[[asyncpg.Connection], Awaitable[list]],
                     conn: asyncpg.Connection | None = None) -> list | None:
        """One chart under the chart timeout; None when it timed out (rendered empty)."""
        timeout = self.settings.chart_timeout_s
        try:
            if conn is not None:
                return await asyncio.wait_for(fn(conn), timeout)
            async with asyncio.timeout(timeout):
                async with self.db.acquire() as own:
                    return await fn(own)
        except (TimeoutError, asyncpg.QueryCanceledError):
            return None

    async def _leads_over_time(self, conn, user_id, start, end, granularity) -> list:
        rows = await self.db.fetch("chart_leads_over_time", q.LEADS_OVER_TIME, user_id, start,
                                   end, granularity, conn=conn)
        return [schemas.LeadsPoint(bucket=r["bucket"], leads=r["leads"]) for r in rows]

    async def _lead_quality(self, conn, user_id, start, end) -> list:
        counts: dict[str, int] = {}
        if self.flags.batch_queries:
            rows = await self.db.fetch("chart_lead_quality", q.LEAD_QUALITY, user_id, start, end,
                                       conn=conn)
            counts = {r["bucket"]: r["leads"] for r in rows}
        else:
            for name, low, high in q.LEAD_BUCKETS:
                counts[name] = await self.db.fetchval(
                    "chart_lead_quality_naive", q.NAIVE_LEAD_QUALITY_BUCKET, user_id, start, end,
                    low, high, conn=conn)
        return [schemas.QualityBucket(bucket=name, leads=counts.get(name, 0))
                for name, _, _ in q.LEAD_BUCKETS]

    async def _calls_by_status(self, conn, user_id, start, end) -> list:
        rows = await self.db.fetch("chart_calls_by_status", q.CALLS_BY_STATUS, user_id, start,
                                   end, conn=conn)
        return [schemas.StatusCount(status=r["status"], calls=r["calls"]) for r in rows]

    async def _hourly_load(self, conn, user_id, from_date, to_date, start, end) -> list:
        if self.flags.rollup_charts:
            rows = await self.db.fetch("chart_hourly_load", q.HOURLY_LOAD_ROLLUP, user_id,
                                       from_date, to_date + timedelta(days=1), conn=conn)
        else:
            rows = await self.db.fetch("chart_hourly_load_naive", q.NAIVE_HOURLY_LOAD, user_id,
                                       start, end, conn=conn)
        return [schemas.HourlyLoad(agent_id=r["agent_id"], hour=r["hour"], calls=r["calls"])
                for r in rows]
