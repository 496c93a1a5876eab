"""Naive and optimized are two ways to compute the same answers."""

from __future__ import annotations

import asyncpg
import pytest

from tests.conftest import auth, running_app

ROUTES = ["/api/v1/dashboard/overview",
          "/api/v1/dashboard/analytics",
          "/api/v1/dashboard/analytics?granularity=week",
          "/api/v1/agents",
          "/api/v1/activity?limit=30"]


def comparable(body: dict) -> dict:
    """Drop what legitimately differs: when the numbers were computed."""
    if "kpis" in body:
        body = {**body, "kpis": {k: v for k, v in body["kpis"].items() if k != "as_of"}}
    return body


async def _refresh_view(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("REFRESH MATERIALIZED VIEW user_kpi_summary")
    finally:
        await conn.close()


@pytest.mark.parametrize("rank", [0, 5])
async def test_same_data_in_both_profiles(shared_dbs, datasets, rank):
    user = sorted(datasets.manifest["users"], key=lambda u: u["weight"], reverse=True)[rank]
    await _refresh_view(shared_dbs["optimized"])  # the view's window is today's
    bodies: dict[str, dict[str, dict]] = {}
    for profile in ("optimized", "naive"):
        async with running_app(shared_dbs[profile], profile) as (_, client):
            bodies[profile] = {}
            for path in ROUTES + [f"/api/v1/agents/{user['agent_ids'][0]}"]:
                r = await client.get(path, headers=auth(user["api_key"]))
                assert r.status_code == 200
                bodies[profile][path] = comparable(r.json())
    for path, optimized in bodies["optimized"].items():
        assert optimized == bodies["naive"][path], path


async def test_one_agent_first_then_the_list_with_per_agent_queries_and_the_cache(
        shared_dbs, datasets):
    """batch_queries off, response_cache on (one toggle off, as `harness ablate` runs it):
    the stats an agent's page caches are the user's, so the list after it has every
    agent's, as the optimized profile computes them."""
    user = max((u for u in datasets.manifest["users"] if len(u["agent_ids"]) > 1),
               key=lambda u: u["weight"])
    headers = auth(user["api_key"])
    async with running_app(shared_dbs["optimized"]) as (_, client):
        expected = (await client.get("/api/v1/agents", headers=headers)).json()
    async with running_app(shared_dbs["optimized"],
                           toggles={"batch_queries": False, "warm_cache": False}) as (_, client):
        one = await client.get(f"/api/v1/agents/{user['agent_ids'][0]}", headers=headers)
        assert one.status_code == 200
        listed = (await client.get("/api/v1/agents", headers=headers)).json()
    assert {a["agent_id"]: a["stats"] for a in listed["agents"]} \
        == {a["agent_id"]: a["stats"] for a in expected["agents"]}
