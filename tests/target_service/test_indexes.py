"""The optimized queries really use the indexes, through the service's own pool.

EXPLAIN runs on connections checked out of the app's pool, so they carry the
pool's session settings (plan_cache_mode in particular) and the same
parameter types asyncpg sends: what is proven here is what the service gets.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from target_service.db import maintenance
from target_service.db.queries import calls as cq
from target_service.db.queries import dashboard as q
from target_service.domain import kpi_window_start
from tests.conftest import running_app


def plan_nodes(plan: dict) -> list[dict]:
    nodes = [plan]
    for child in plan.get("Plans", []):
        nodes += plan_nodes(child)
    return nodes


async def explain(conn: asyncpg.Connection, sql: str, *args) -> list[dict]:
    raw = await conn.fetchval("EXPLAIN (FORMAT JSON) " + sql, *args)
    return plan_nodes(json.loads(raw)[0]["Plan"])


def scans_on(nodes: list[dict], table: str) -> list[tuple[str, str | None]]:
    return [(n["Node Type"], n.get("Index Name")) for n in nodes
            if n.get("Relation Name") == table or (
                n["Node Type"] == "Bitmap Index Scan" and n.get("Index Name", "").startswith(table))]


def queries_for(user_id: int) -> dict[str, tuple]:
    start = kpi_window_start()
    end = start + timedelta(days=30)
    return {
        "recent_activity": (q.RECENT_ACTIVITY, user_id, start, 20),
        "calls_by_status": (q.CALLS_BY_STATUS, user_id, start, end),
        "activity_first_page": (cq.ACTIVITY_FIRST_PAGE, user_id, 20),
        "activity_page_before": (cq.ACTIVITY_PAGE_BEFORE, user_id, 20, end, 10**9),
    }


@pytest.fixture
def light_user(datasets) -> int:
    # the planner rightly prefers a seq scan for a user owning a third of a tiny
    # table; a typical user owns a few percent, where the index must win
    users = sorted(datasets.manifest["users"], key=lambda u: u["weight"])
    return users[len(users) // 2]["user_id"]


async def test_optimized_queries_never_seq_scan_calls(shared_dbs, light_user):
    async with running_app(shared_dbs["optimized"]) as (app, _):
        db = app.state.resources.db
        async with db.acquire() as conn:
            for name, (sql, *args) in queries_for(light_user).items():
                nodes = await explain(conn, sql, *args)
                calls = scans_on(nodes, "calls")
                assert all(kind != "Seq Scan" for kind, _ in calls), (name, calls)
            stats = await explain(conn, q.AGENTS_WITH_STATS, light_user, kpi_window_start().date())
            assert any(n.get("Index Name") == "agent_analytics_user_date_hour_idx" for n in stats)


async def index_scans(conn: asyncpg.Connection, index: str) -> int:
    """idx_scan of an index as the statistics system has it, after flushing ours."""
    if await conn.fetchval("SELECT to_regproc('pg_stat_force_next_flush') IS NOT NULL"):
        await conn.execute("SELECT pg_stat_force_next_flush()")
    else:  # PostgreSQL 14 flushes at most once a second
        await asyncio.sleep(1.1)
        await conn.execute("SELECT 1")
    return await conn.fetchval(
        "SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = $1", index)


async def test_partial_index_is_used_through_the_pool(shared_dbs, light_user):
    """The real query, prepared and run by asyncpg on a pooled connection, scans the index."""
    sql, *args = queries_for(light_user)["recent_activity"]
    async with running_app(shared_dbs["optimized"]) as (app, _):
        db = app.state.resources.db
        async with db.acquire() as conn:
            index = await conn.fetchval(
                "SELECT index_name FROM partial_index_cutoffs WHERE purpose = 'recent_calls'")
            assert await conn.fetchval("SHOW plan_cache_mode") == "force_custom_plan"
            before = await index_scans(conn, index)
            runs = 12  # past the 5 executions after which PostgreSQL may go generic
            for _ in range(runs):
                await db.fetch("recent_activity", sql, *args, conn=conn)
            assert await index_scans(conn, index) - before >= runs

            # the reason for the setting: the same prepared statement with a generic
            # plan cannot prove `created_at >= $2` implies the index's cutoff
            await conn.execute("SET plan_cache_mode = force_generic_plan")
            try:
                before = await index_scans(conn, index)
                stmt = await conn.prepare(sql)
                for _ in range(runs):
                    await stmt.fetch(*args)
                assert await index_scans(conn, index) == before
            finally:
                await conn.execute("RESET plan_cache_mode")


async def test_maintenance_rolls_the_partial_index(fresh_db, light_user):
    dsn = await fresh_db("optimized")
    conn = await asyncpg.connect(dsn, server_settings={"plan_cache_mode": "force_custom_plan"})
    try:
        first = await maintenance.roll_recent_calls_index(conn)
        assert first.rolled is False  # built today by the migration: nothing to do
        later = datetime.now(UTC) + timedelta(days=3)
        rolled = await maintenance.roll_recent_calls_index(conn, now=later, force=True)
        assert rolled.rolled and rolled.dropped == first.index_name
        names = {r["indexname"] for r in await conn.fetch(
            "SELECT indexname FROM pg_indexes WHERE indexname LIKE 'calls_recent_%'")}
        assert names == {rolled.index_name}
        sql, *args = queries_for(light_user)["recent_activity"]
        used = {n.get("Index Name") for n in await explain(conn, sql, *args)}
        assert rolled.index_name in used
        again = await maintenance.roll_recent_calls_index(conn, now=later)
        assert again.rolled is False
    finally:
        await conn.close()
