"""Load shedding and a starved pool: past its limits the service answers 503 with
`Retry-After` at once, never a 500 and never a hang, and serves again when the load drops.

The middleware is tested around a small Starlette app whose handler waits on an event, so
"in flight" is exact, not a matter of timing: N requests are held inside, the next is
shed. The pool is tested on the real service with one connection and a 1 ms acquire
timeout under concurrent requests of every route (the case that used to answer 500s).
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter

import httpx
import pytest
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from target_service.errors import RETRY_AFTER_S
from target_service.settings import PROFILES, Settings
from target_service.shedding import LoadSheddingMiddleware, shed_counter
from target_service.telemetry import RequestMetricsMiddleware, ServiceMetrics
from tests.conftest import auth, busiest_user, running_app

LIMIT = 3


class Held:
    """A tiny app whose `/items/{n}` requests wait until released; `/healthz` does not."""

    def __init__(self, limit: int | None) -> None:
        self.release = asyncio.Event()
        self.inside = 0
        self.arrived = asyncio.Condition()

        async def item(request):
            async with self.arrived:
                self.inside += 1
                self.arrived.notify_all()
            await self.release.wait()
            return JSONResponse({"n": request.path_params["n"]})

        async def healthz(_):
            return JSONResponse({"status": "ok"})

        app = Starlette(routes=[Route("/items/{n}", item), Route("/healthz", healthz)])
        self.metrics = ServiceMetrics(CollectorRegistry())
        self.shed = shed_counter(self.metrics.registry)
        app.add_middleware(LoadSheddingMiddleware, shed=self.shed, limit=limit)
        app.add_middleware(RequestMetricsMiddleware, metrics=self.metrics)
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                        base_url="http://held")

    async def until_inside(self, n: int) -> None:
        async with self.arrived:
            await asyncio.wait_for(self.arrived.wait_for(lambda: self.inside >= n), 10)

    def observed(self, route: str, status: str) -> float:
        value = self.metrics.registry.get_sample_value(
            "http_request_duration_seconds_count",
            {"method": "GET", "route": route, "status": status})
        return value or 0.0


async def test_past_the_limit_requests_are_shed_at_once_then_served_again():
    held = Held(LIMIT)
    async with held.client as c:
        inside = [asyncio.create_task(c.get(f"/items/{n}")) for n in range(LIMIT)]
        await held.until_inside(LIMIT)
        # the limit is reached: these are answered while the first ones are still held
        shed = await asyncio.wait_for(asyncio.gather(*(c.get("/items/9") for _ in range(4))), 10)
        health = await asyncio.wait_for(c.get("/healthz"), 10)
        held.release.set()
        served = await asyncio.wait_for(asyncio.gather(*inside), 10)
        after = await c.get("/items/10")  # the load dropped: served normally
    assert [r.status_code for r in served] == [200] * LIMIT
    for r in shed:
        assert r.status_code == 503
        assert r.headers["retry-after"] == str(RETRY_AFTER_S)
        assert r.json()["error"]["code"] == "overloaded"
        assert r.json()["error"]["message"]
    assert health.status_code == 200, "health is never shed"
    assert after.status_code == 200 and after.json() == {"n": "10"}
    assert held.shed._value.get() == 4
    # shed requests are timed and labelled with the route they asked for
    assert held.observed("/items/{n}", "503") == 4
    assert held.observed("/items/{n}", "200") == LIMIT + 1


async def test_without_a_limit_nothing_is_shed():
    held = Held(None)
    async with held.client as c:
        many = [asyncio.create_task(c.get(f"/items/{n}")) for n in range(3 * LIMIT)]
        await held.until_inside(3 * LIMIT)
        held.release.set()
        answers = await asyncio.wait_for(asyncio.gather(*many), 10)
    assert {r.status_code for r in answers} == {200}
    assert held.shed._value.get() == 0


def test_the_optimized_profile_sheds_and_the_naive_one_queues():
    assert PROFILES["optimized"].load_shedding is True
    assert PROFILES["naive"].load_shedding is False
    assert Settings().max_in_flight >= 1
    assert Settings(profile="naive", toggles={"load_shedding": True}).flags.load_shedding


# ---- a starved pool --------------------------------------------------------------------

ROUTES = ("/api/v1/dashboard/overview", "/api/v1/dashboard/analytics", "/api/v1/activity",
          "/api/v1/agents", "/readyz")
CONCURRENCY = 24
ROUNDS = 6


@pytest.mark.parametrize("profile", ["naive", "optimized"])
async def test_a_starved_pool_answers_only_2xx_or_503(fresh_db, datasets, profile):
    """One connection, a 1 ms acquire timeout, caches off, 24 concurrent requests: each is
    served or told to retry; none is a 500, and the pool is whole afterwards."""
    dsn = await fresh_db(profile)
    user = busiest_user(datasets.manifest)
    h = auth(user["api_key"])
    agent = user["agent_ids"][0]
    paths = itertools.cycle([*ROUTES, f"/api/v1/agents/{agent}"])
    seen: Counter[int] = Counter()
    async with running_app(dsn, profile, pool={"min_size": 1, "max_size": 1,
                                               "acquire_timeout_s": 0.001},
                           toggles={"response_cache": False, "auth_cache": False,
                                    "warm_cache": False, "load_shedding": False}) as (app, c):
        for _ in range(ROUNDS):
            batch = [c.get(next(paths), headers=h) for _ in range(CONCURRENCY)]
            batch.append(c.post("/api/v1/calls", headers=h, json={
                "agent_id": agent, "status": "completed", "direction": "inbound",
                "duration_seconds": 30}))
            for r in await asyncio.wait_for(asyncio.gather(*batch), 60):
                seen[r.status_code] += 1
                if r.status_code == 503:
                    assert r.headers["retry-after"] == str(RETRY_AFTER_S)
        bad = {s: n for s, n in seen.items() if not (200 <= s < 300 or s == 503)}
        assert bad == {}, f"statuses other than 2xx/503: {bad} (all: {dict(seen)})"
        assert seen[503] > 0, "the pool was not starved: the test proves nothing"
        # once the burst is over, the one connection serves again (none was leaked)
        # (a 1 ms acquire timeout can miss on a busy machine even alone: a leaked
        # connection would give no 200 however often asked, so ask up to 20 times)
        ok: list[int] = []
        while len(ok) < 20 and 200 not in ok:
            await asyncio.sleep(0.05)
            ok.append((await c.get("/api/v1/activity", headers=h)).status_code)
        db = app.state.resources.db
        assert db.pool.get_size() <= 1
    assert 200 in ok, ok
