"""A database restart under load: every route answers 2xx or a 503 with `Retry-After`, never
a 500, and the service serves again once the server is back, with no restart of its own.

The server is a private embedded PostgreSQL (restarting the session's would pull it from
under every other test). `EmbeddedPostgres.restart()` is `pg_ctl restart -m fast`: running
queries fail with `AdminShutdownError`, new connections with `CannotConnectNowError` or a
refused socket, idle pooled connections are dead when next used: every way asyncpg has of
saying the server went away. Both profiles: the naive one queries on every request, the
optimized one only on cache misses and writes.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections import Counter
from collections.abc import Iterator

import pytest

from harness.stack import database
from tests.conftest import TEST_SEED, auth, private_postgres, running_app

pytestmark = pytest.mark.e2e

WORKERS = 8
BEFORE_S, AFTER_S = 1.0, 4.0


@pytest.fixture(scope="module")
def private_pg() -> Iterator[database.EmbeddedPostgres]:
    with private_postgres("harness-restart-pg-") as server:
        yield server


def requests_of_every_route(user: dict, agent_id: int) -> Iterator[tuple[str, str, dict]]:
    """(method, path, json) of every API route, round robin, writes included."""
    routes = [
        ("GET", "/api/v1/dashboard/overview", None),
        ("GET", "/api/v1/dashboard/analytics", None),
        ("GET", "/api/v1/activity", None),
        ("GET", "/api/v1/agents", None),
        ("GET", f"/api/v1/agents/{agent_id}", None),
        ("POST", "/api/v1/calls", {"agent_id": agent_id, "status": "completed",
                                    "direction": "outbound", "duration_seconds": 42}),
        ("GET", "/readyz", None),
    ]
    return itertools.cycle(routes)


@pytest.mark.parametrize("profile", ["naive", "optimized"])
async def test_a_restart_under_load_is_503s_with_retry_after_then_service(private_pg, profile):
    admin = private_pg.start()
    template = await database.ensure_dataset(admin, "tiny", TEST_SEED,
                                             optimized=profile == "optimized")
    dsn = await database.clone(admin, template.template, purpose="test")
    user = max(template.manifest["users"], key=lambda u: u["weight"])
    agent_id = user["agent_ids"][0]
    seen: Counter[tuple[str, int]] = Counter()
    bad: list[str] = []
    after_restart: list[int] = []
    restarted, done = asyncio.Event(), threading.Event()
    try:
        async with running_app(dsn, profile) as (_, client):
            routes = requests_of_every_route(user, agent_id)

            async def worker() -> None:
                loop = asyncio.get_running_loop()
                end = loop.time() + BEFORE_S + AFTER_S + 10
                while loop.time() < end:
                    method, path, body = next(routes)
                    resp = await client.request(method, path, json=body,
                                                headers=auth(user["api_key"]))
                    seen[(path, resp.status_code)] += 1
                    if resp.status_code >= 500 and (
                            resp.status_code != 503 or "retry-after" not in resp.headers
                            or not ("error" in resp.json() or path == "/readyz")):
                        bad.append(f"{method} {path}: {resp.status_code} {resp.text[:200]}")
                    if restarted.is_set():
                        after_restart.append(resp.status_code)
                        if len(after_restart) > 200 and all(
                                s < 500 for s in after_restart[-50:]):
                            return  # serving again: 50 in a row answered
                    await asyncio.sleep(0)

            async def restart() -> None:
                await asyncio.sleep(BEFORE_S)
                try:
                    await asyncio.to_thread(private_pg.restart)
                finally:
                    done.set()
                restarted.set()

            await asyncio.gather(restart(), *(worker() for _ in range(WORKERS)))
    finally:
        # a failed request must not drop the clone mid-restart (nor hide why it failed)
        await asyncio.to_thread(done.wait, 120)
        await database.drop(admin, dsn)
    assert not bad, bad[:10]
    assert sum(n for (_, s), n in seen.items() if s == 503) > 0, seen  # the restart was felt
    assert after_restart[-50:] and all(s < 500 for s in after_restart[-50:]), \
        f"not serving again after the restart: {Counter(after_restart[-50:])}"
