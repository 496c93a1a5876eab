"""A restarted or a paused database: the service recovers on its own within the bound.

Issue 12's finding: PostgreSQL restarted 20 s into a mixed run left writes invisible in
the overview for over 10 s, because the KPI refresher never noticed its LISTEN
connection had died (it only queried it once a minute) and so never heard another
`kpi_dirty`. Here a private embedded server (as in test_db_restart.py: restarting the
session's would pull it from under every other test) is

* restarted (`pg_ctl restart -m fast`): every session ends, new ones are refused until
  it is back;
* paused (SIGSTOP of the postmaster and its backends, 5 s, then SIGCONT): a server that
  hangs instead of failing, found only by the keepalive's timeout.

Either way, once the server is back a new write is in the overview within 5 s, and the
listener and the refresher reconnected (their metrics say so).
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator

import psutil
import pytest

from harness.stack import database
from tests.conftest import TEST_SEED, auth, private_postgres, running_app
from tests.target_service.test_recovery import (
    RECOVERY_BOUND_S,
    metric,
    settled,
    total_calls,
    until,
    write_then_seen,
)

pytestmark = pytest.mark.e2e

PAUSE_S = 5.0  # longer than the keepalive's 3 s limit: the hang must be detected


@pytest.fixture(scope="module")
def private_pg() -> Iterator[database.EmbeddedPostgres]:
    with private_postgres("harness-recovery-pg-") as server:
        yield server


@pytest.fixture
async def clone(private_pg) -> tuple[str, dict]:
    admin = private_pg.start()
    template = await database.ensure_dataset(admin, "tiny", TEST_SEED, optimized=True)
    dsn = await database.clone(admin, template.template, purpose="test")
    user = max(template.manifest["users"], key=lambda u: u["weight"])
    yield dsn, user
    await database.drop(admin, dsn)


def server_processes(server: database.EmbeddedPostgres) -> list[psutil.Process]:
    postmaster = psutil.Process(server.postmaster_pid())
    return [postmaster, *postmaster.children(recursive=True)]


async def fault_then_recover(clone: tuple[str, dict], fault) -> None:
    """Warm the caches, apply `fault` (in a thread; returns when the server is back), then
    prove the recovery: reconnected, and a new write seen within the bound."""
    dsn, user = clone
    h = auth(user["api_key"])
    async with running_app(dsn, toggles={"warm_cache": False}) as (app, c):
        res = app.state.resources
        await settled(app)
        await total_calls(c, h)
        listener_before, refresher_before = res.listener.connections, res.refresher.connections
        await asyncio.to_thread(fault)
        back = time.monotonic()
        lag = await write_then_seen(c, user, back)
        assert lag < RECOVERY_BOUND_S, f"write seen {lag:.2f}s after the database was back"
        await until(lambda: res.listener.connections > listener_before, "listener back", 5)
        await until(lambda: res.refresher.connections > refresher_before, "refresher back", 5)
        assert metric(app, "cache_listener_reconnects_total") >= 1
        assert metric(app, "kpi_refresher_reconnects_total") >= 1
        assert metric(app, "cache_listener_connected") == 1
        assert metric(app, "kpi_refresher_connected") == 1


async def test_after_a_restart_a_write_is_visible_within_5s(private_pg, clone):
    await fault_then_recover(clone, private_pg.restart)


async def test_after_a_pause_the_hang_is_detected_and_a_write_is_visible_within_5s(
        private_pg, clone):
    def pause() -> None:
        stopped = server_processes(private_pg)
        try:
            for p in stopped:
                p.send_signal(signal.SIGSTOP)
            time.sleep(PAUSE_S)
        finally:
            for p in stopped:
                try:
                    p.send_signal(signal.SIGCONT)
                except psutil.NoSuchProcess:
                    pass

    await fault_then_recover(clone, pause)
