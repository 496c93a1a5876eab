"""The KPI view follows writes: debounced, bounded, one refresh for many writes."""

from __future__ import annotations

import asyncio
import time

from tests.conftest import auth, busiest_user, running_app


def call_body(agent_id: int) -> dict:
    return {"agent_id": agent_id, "status": "completed", "direction": "outbound",
            "duration_seconds": 60, "cost": 0.1}


async def test_view_reflects_a_new_call_after_the_refresher_runs(fresh_db, datasets):
    user = busiest_user(datasets.manifest)
    h = auth(user["api_key"])
    async with running_app(await fresh_db("optimized"), kpi_debounce_s=0.1,
                           kpi_max_delay_s=0.5) as (app, client):
        refresher = app.state.resources.refresher
        assert await refresher.wait_for_refresh(0, timeout=10)  # the start-up refresh
        before = (await client.get("/api/v1/dashboard/overview", headers=h)).json()["kpis"]
        count = refresher.refresh_count

        r = await client.post("/api/v1/calls", headers=h, json=call_body(user["agent_ids"][0]))
        assert r.status_code == 201
        written = time.monotonic()
        assert await refresher.wait_for_refresh(count, timeout=10)
        visible_after = time.monotonic() - written

        after = (await client.get("/api/v1/dashboard/overview", headers=h)).json()["kpis"]
        assert after["total_calls"] == before["total_calls"] + 1
        assert after["completed_calls"] == before["completed_calls"] + 1
        assert after["as_of"] > before["as_of"]
        # the documented bound: max_delay + one refresh (generous for a busy CI box)
        assert visible_after < 0.5 + 5.0
        metrics = (await client.get("/metrics")).text
        assert 'kpi_view_refreshes_total{outcome="ok"}' in metrics


async def test_a_burst_of_writes_is_one_refresh_not_one_per_row(fresh_db, datasets):
    user = busiest_user(datasets.manifest)
    h = auth(user["api_key"])
    async with running_app(await fresh_db("optimized"), kpi_debounce_s=0.3,
                           kpi_max_delay_s=2.0) as (app, client):
        refresher = app.state.resources.refresher
        assert await refresher.wait_for_refresh(0, timeout=10)
        count = refresher.refresh_count
        await asyncio.gather(*(client.post("/api/v1/calls", headers=h,
                                           json=call_body(user["agent_ids"][0]))
                               for _ in range(20)))
        assert await refresher.wait_for_refresh(count, timeout=10)
        await asyncio.sleep(0.8)  # anything still pending would refresh by now
        assert refresher.refresh_count - count <= 2
        kpis = (await client.get("/api/v1/dashboard/overview", headers=h)).json()["kpis"]
        view_total = kpis["total_calls"]
    async with running_app(app.state.resources.settings.database_url.get_secret_value(),
                           "naive") as (_, naive):
        raw = (await naive.get("/api/v1/dashboard/overview", headers=h)).json()["kpis"]
    assert view_total == raw["total_calls"]


async def test_only_one_process_refreshes(fresh_db):
    dsn = await fresh_db("optimized")
    async with running_app(dsn) as (app1, _), running_app(dsn) as (app2, _):
        r1, r2 = app1.state.resources.refresher, app2.state.resources.refresher
        deadline = time.monotonic() + 10
        while not (r1.is_leader or r2.is_leader) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        assert r1.is_leader != r2.is_leader
