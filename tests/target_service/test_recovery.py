"""The service recovers on its own when the database drops every one of its connections.

`pg_terminate_backend` of every service connection (pool, invalidation listener, KPI
refresher) is what a failover or an operator does: the server stays up, the sessions
go. Afterwards, without any restart of the service, the listener and the refresher are
back (their metrics say so), the caches were cleared (notifications sent meanwhile are
lost), and a new write is in the overview within 5 s: the refresher noticed its dead
connection, reconnected and refreshed. Restarting and pausing the server are the e2e
cases in test_recovery_restart.py; the helpers here serve both.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg
import httpx

from tests.conftest import auth, busiest_user, running_app

OVERVIEW = "/api/v1/dashboard/overview"
RECOVERY_BOUND_S = 5.0  # issue 12: the freshness bound holds again within 5 s
SERVICE_BACKENDS = """
    SELECT pg_terminate_backend(pid) FROM pg_stat_activity
    WHERE datname = current_database() AND pid <> pg_backend_pid()
      AND application_name LIKE 'target_service%'"""


def metric(app, name: str) -> float:
    return app.state.metrics.registry.get_sample_value(name) or 0.0


async def until(predicate, what: str, timeout: float = 10.0) -> float:
    """Poll `predicate` (sync) until true; seconds it took (fails past `timeout`)."""
    start = time.monotonic()
    while not predicate():
        assert time.monotonic() - start < timeout, f"{what} within {timeout}s"
        await asyncio.sleep(0.02)
    return time.monotonic() - start


async def settled(app) -> None:
    """Listener connected, this process leading the refresher, the first refresh done."""
    res = app.state.resources
    await until(res.listener.connected.is_set, "listener connected")
    await until(lambda: res.refresher.is_leader, "refresher leading")
    assert await res.refresher.wait_for_refresh(0, timeout=10)


async def total_calls(c: httpx.AsyncClient, headers: dict) -> int:
    return (await c.get(OVERVIEW, headers=headers)).json()["kpis"]["total_calls"]


async def write_then_seen(c: httpx.AsyncClient, user: dict, since: float) -> float:
    """POST a call (retrying 503s while the pool reconnects), then poll the overview until
    its KPIs count it; seconds from `since` (the database back) to seen."""
    h = auth(user["api_key"])
    before = None
    body = {"agent_id": user["agent_ids"][0], "status": "completed", "direction": "inbound",
            "duration_seconds": 42, "cost": 0.05}
    while True:
        try:
            before = await total_calls(c, h) if before is None else before
            r = await c.post("/api/v1/calls", headers=h, json=body)
        except KeyError:  # an error body while the pool reconnects
            r = None
        if r is not None and r.status_code == 201:
            break
        assert r is None or r.status_code == 503, r.text
        assert time.monotonic() - since < 10, "no write accepted after the database came back"
        await asyncio.sleep(0.05)
    while await total_calls(c, h) != before + 1:
        assert time.monotonic() - since < 15, "the write never reached the overview"
        await asyncio.sleep(0.05)
    return time.monotonic() - since


async def test_after_every_connection_is_terminated_the_service_recovers_on_its_own(
        fresh_db, datasets):
    user = busiest_user(datasets.manifest)
    h = auth(user["api_key"])
    dsn = await fresh_db("optimized")
    async with running_app(dsn, toggles={"warm_cache": False}) as (app, c):
        res = app.state.resources
        await settled(app)
        await total_calls(c, h)
        assert res.caches.dashboard.has_overview(user["user_id"]) and len(res.caches.auth) == 1
        listener_before = res.listener.connections
        admin = await asyncpg.connect(dsn)
        try:
            killed = await admin.fetch(SERVICE_BACKENDS)
        finally:
            await admin.close()
        back = time.monotonic()  # the server never left: only the sessions did
        assert len(killed) >= 3  # a pooled connection, the listener's, the refresher's
        await until(lambda: res.listener.connections > listener_before, "listener back")
        # cleared on reconnect, before anything new was asked
        assert not res.caches.dashboard.has_overview(user["user_id"])
        assert len(res.caches.auth) == 0
        lag = await write_then_seen(c, user, back)
        assert lag < RECOVERY_BOUND_S
        assert metric(app, "kpi_refresher_reconnects_total") >= 1
        assert metric(app, "cache_listener_reconnects_total") >= 1
        assert metric(app, "kpi_refresher_connected") == 1
        assert metric(app, "kpi_refresher_leader") == 1
        assert metric(app, "cache_listener_connected") == 1
        assert res.refresher.connections >= 2


async def test_the_refresher_alone_losing_its_connection_refreshes_at_once(fresh_db, datasets):
    """Only the refresher's session goes: a write meanwhile (its kpi_dirty unheard) is in
    the overview once the refresher is back, without waiting for another change."""
    user = busiest_user(datasets.manifest)
    h = auth(user["api_key"])
    dsn = await fresh_db("optimized")
    async with running_app(dsn, toggles={"warm_cache": False}) as (app, c):
        res = app.state.resources
        await settled(app)
        before = await total_calls(c, h)
        admin = await asyncpg.connect(dsn)
        try:
            pid = res.refresher.backend_pid
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
            await until(lambda: not res.refresher.connected, "refresher noticed its loss", 2)
            # written while nobody listens for kpi_dirty
            await admin.execute(
                "INSERT INTO calls (user_id, agent_id, status, direction, duration_seconds, cost)"
                " VALUES ($1, $2, 'completed', 'inbound', 42, 0.05)",
                user["user_id"], user["agent_ids"][0])
            written = time.monotonic()
        finally:
            await admin.close()
        while await total_calls(c, h) != before + 1:
            assert time.monotonic() - written < RECOVERY_BOUND_S, "the missed write stayed unseen"
            await asyncio.sleep(0.05)
        assert metric(app, "kpi_refresher_reconnects_total") == 1
        assert metric(app, "cache_listener_reconnects_total") == 0


async def test_a_cancel_that_lands_as_the_connection_closes_still_stops_the_task(shared_dbs):
    """Python 3.11's `asyncio.wait_for` loses a cancel that lands in the same loop
    iteration as what it waits for (gh-86296). The listener and the refresher wait for
    their connection to close; cancelled just as the server went away, they reconnected
    forever, and the event loop's final cancel-all hung (a CI run's 600 s timeout).
    Here the wake-up and the cancel land together on purpose, with each task parked in
    that wait (an asyncio.Event's waiters are private, but the only way to know)."""
    async with running_app(shared_dbs["optimized"]) as (app, _client):
        res = app.state.resources
        await settled(app)
        for task, wake in ((res.listener, res.listener.closed),
                           (res.refresher, res.refresher._wake)):
            running = task._task
            await until(lambda w=wake: bool(w._waiters), f"{task.task_name} parked")
            wake.set()
            running.cancel()
            done, _ = await asyncio.wait([running], timeout=3)
            assert done, f"{task.task_name} lost a cancel and kept running"
