"""Every route's happy path and its bad inputs: 401, 404, 422 as JSON, never a 500."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import auth, busiest_user, running_app, two_users

DATA_ROUTES = ["/api/v1/dashboard/overview", "/api/v1/dashboard/analytics", "/api/v1/agents",
               "/api/v1/activity"]


@pytest.fixture
async def client(shared_dbs):
    async with running_app(shared_dbs["optimized"]) as (_, client):
        yield client


@pytest.fixture
def user(datasets) -> dict:
    return busiest_user(datasets.manifest)


def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and body["error"]["message"]
    if code:
        assert body["error"]["code"] == code
    return body


async def test_overview(client, user):
    r = await client.get("/api/v1/dashboard/overview", headers=auth(user["api_key"]))
    assert r.status_code == 200
    body = r.json()
    assert body["user_id"] == user["user_id"]
    assert body["kpis"]["total_calls"] > 0 and 0 < body["kpis"]["success_rate"] < 1
    assert {a["agent_id"] for a in body["agents"]} == set(user["agent_ids"])
    recent = body["recent_activity"]
    assert 0 < len(recent) <= 20
    stamps = [item["created_at"] for item in recent]
    assert stamps == sorted(stamps, reverse=True)


async def test_analytics_defaults_and_granularity(client, user):
    r = await client.get("/api/v1/dashboard/analytics", headers=auth(user["api_key"]))
    assert r.status_code == 200
    body = r.json()
    assert body["granularity"] == "day" and body["partial"] is False
    charts = body["charts"]
    assert sum(p["leads"] for p in charts["leads_over_time"]) > 0
    assert [b["bucket"] for b in charts["lead_quality"]] == ["hot", "warm", "cold", "poor"]
    assert {s["status"] for s in charts["calls_by_status"]} <= {
        "completed", "failed", "no_answer", "busy", "voicemail"}
    assert all(0 <= h["hour"] <= 23 for h in charts["agent_hourly_load"])

    to = datetime.now(UTC).date()
    r = await client.get("/api/v1/dashboard/analytics", headers=auth(user["api_key"]),
                         params={"from": str(to - timedelta(days=90)), "to": str(to),
                                 "granularity": "month"})
    assert r.status_code == 200
    buckets = [p["bucket"] for p in r.json()["charts"]["leads_over_time"]]
    assert all(b.endswith("-01") for b in buckets) and 3 <= len(buckets) <= 4


async def test_agents_and_one_agent(client, user):
    r = await client.get("/api/v1/agents", headers=auth(user["api_key"]))
    assert r.status_code == 200
    body = r.json()
    assert body["user_id"] == user["user_id"]
    assert [a["agent_id"] for a in body["agents"]] == sorted(user["agent_ids"])
    for agent in body["agents"]:
        assert agent["config_source"] in {"live", "cache", "database", "unavailable"}
    agent_id = user["agent_ids"][0]
    r = await client.get(f"/api/v1/agents/{agent_id}", headers=auth(user["api_key"]))
    assert r.status_code == 200
    assert r.json()["agent"]["agent_id"] == agent_id


async def test_activity_pages_are_disjoint_and_ordered(client, user):
    seen: list[tuple[str, int]] = []
    cursor = None
    for _ in range(3):
        params = {"limit": 7} | ({"before": cursor} if cursor else {})
        r = await client.get("/api/v1/activity", headers=auth(user["api_key"]), params=params)
        assert r.status_code == 200
        body = r.json()
        assert len(body["items"]) == 7
        seen += [(i["created_at"], i["call_id"]) for i in body["items"]]
        cursor = body["next_cursor"]
        assert cursor
    assert len(set(seen)) == len(seen) == 21
    assert seen == sorted(seen, reverse=True)


async def test_post_call(fresh_db, datasets):
    user = busiest_user(datasets.manifest)
    async with running_app(await fresh_db("optimized")) as (_, client):
        body = {"agent_id": user["agent_ids"][0], "status": "completed", "direction": "outbound",
                "duration_seconds": 93, "cost": 0.21}
        r = await client.post("/api/v1/calls", headers=auth(user["api_key"]), json=body)
        assert r.status_code == 201, r.text
        created = r.json()
        assert created["user_id"] == user["user_id"] and created["call_id"] > 0
        r = await client.get("/api/v1/activity", headers=auth(user["api_key"]),
                             params={"limit": 1})
        assert r.json()["items"][0]["call_id"] == created["call_id"]


@pytest.mark.parametrize("path", DATA_ROUTES + ["/api/v1/agents/1"])
async def test_unauthenticated_is_401(client, path):
    assert_error(await client.get(path), 401, "unauthorized")
    assert_error(await client.get(path, headers=auth("dk_not_a_real_key")), 401)
    assert_error(await client.get(path, headers={"Authorization": "Basic abc"}), 401)


async def test_post_without_key_is_401(client):
    assert_error(await client.post("/api/v1/calls", json={}), 401)


async def test_other_users_agent_is_404_not_403(client, datasets):
    me, other = two_users(datasets.manifest)
    h = auth(me["api_key"])
    assert_error(await client.get(f"/api/v1/agents/{other['agent_ids'][0]}", headers=h), 404,
                 "not_found")
    assert_error(await client.get("/api/v1/agents/999999999", headers=h), 404)
    body = {"agent_id": other["agent_ids"][0], "status": "completed", "direction": "inbound",
            "duration_seconds": 10}
    assert_error(await client.post("/api/v1/calls", headers=h, json=body), 404)


@pytest.mark.parametrize("params", [
    {"from": "2026-13-01"},
    {"from": "yesterday"},
    {"from": "2026-05-10", "to": "2026-05-01"},          # inverted
    {"from": "2020-01-01", "to": "2026-01-01"},          # wider than the cap
    {"granularity": "hour"},
])
async def test_analytics_bad_params_are_422(client, user, params):
    r = await client.get("/api/v1/dashboard/analytics", headers=auth(user["api_key"]),
                         params=params)
    assert_error(r, 422)


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": "ten"}, {"before": "!!garbage!!"},
                                    {"before": "MjAyNi0wMS0wMXx4"}, {"before": "x" * 300}])
async def test_activity_bad_params_are_422(client, user, params):
    r = await client.get("/api/v1/activity", headers=auth(user["api_key"]), params=params)
    assert_error(r, 422)


async def test_activity_limit_is_capped(client, user):
    r = await client.get("/api/v1/activity", headers=auth(user["api_key"]),
                         params={"limit": 5000})
    assert r.status_code == 200 and len(r.json()["items"]) == 100


@pytest.mark.parametrize("body", [
    {},
    {"agent_id": 1, "status": "exploded", "direction": "inbound", "duration_seconds": 1},
    {"agent_id": 1, "status": "completed", "direction": "sideways", "duration_seconds": 1},
    {"agent_id": 1, "status": "completed", "direction": "inbound", "duration_seconds": -5},
    {"agent_id": 1, "status": "completed", "direction": "inbound", "duration_seconds": 1,
     "cost": -1},
    {"agent_id": 1, "status": "completed", "direction": "inbound", "duration_seconds": 1,
     "user_id": 2},                                                   # no smuggled tenant
])
async def test_post_call_bad_body_is_422(client, user, body):
    r = await client.post("/api/v1/calls", headers=auth(user["api_key"]), json=body)
    assert_error(r, 422, "validation_error")


async def test_post_call_malformed_json_is_422(client, user):
    r = await client.post("/api/v1/calls", content=b"{not json",
                          headers=auth(user["api_key"]) | {"content-type": "application/json"})
    assert_error(r, 422)


async def test_bad_path_params_and_unknown_routes(client, user):
    h = auth(user["api_key"])
    assert_error(await client.get("/api/v1/agents/abc", headers=h), 422)
    assert_error(await client.get("/api/v1/agents/0", headers=h), 422)
    assert_error(await client.get("/api/v1/agents/99999999999999999999999", headers=h), 422)
    assert_error(await client.get("/api/v1/nope", headers=h), 404)
    assert_error(await client.delete("/api/v1/agents", headers=h), 405)


async def test_health_ready_and_metrics(client, user):
    assert (await client.get("/healthz")).json() == {"status": "ok", "checks": {}}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["database"] is True
    await client.get("/api/v1/dashboard/overview", headers=auth(user["api_key"]))
    text = (await client.get("/metrics")).text
    assert 'route="/api/v1/dashboard/overview"' in text
    assert 'db_query_duration_seconds_count{query="kpi_view"}' in text
    assert "db_pool_size" in text
    assert user["api_key"] not in text


async def test_large_bodies_are_gzipped(client, user):
    r = await client.get("/api/v1/dashboard/analytics", headers=auth(user["api_key"])
                         | {"accept-encoding": "gzip"})
    assert r.status_code == 200 and r.headers.get("content-encoding") == "gzip"


@pytest.mark.parametrize("profile", ["optimized", "naive"])
async def test_a_chart_that_times_out_is_empty_and_flagged(shared_dbs, user, profile):
    async with running_app(shared_dbs[profile], profile, chart_timeout_s=1e-6) as (_, client):
        r = await client.get("/api/v1/dashboard/analytics", headers=auth(user["api_key"]))
    assert r.status_code == 200
    body = r.json()
    assert body["partial"] is True
    assert set(body["partial_charts"]) == set(body["charts"])
    assert all(v == [] for v in body["charts"].values())


async def test_no_request_runs_anything_in_the_threadpool(shared_dbs, user, monkeypatch):
    """FastAPI runs a plain `def` dependency or endpoint in the threadpool (a thread
    hand-off per call, several per request): every one of the service's is `async def`."""
    import fastapi.dependencies.utils
    import fastapi.routing

    def refuse(func, *args, **kwargs):
        raise AssertionError(f"{func} ran in the threadpool")

    monkeypatch.setattr(fastapi.dependencies.utils, "run_in_threadpool", refuse)
    monkeypatch.setattr(fastapi.routing, "run_in_threadpool", refuse)
    headers = auth(user["api_key"])
    async with running_app(shared_dbs["optimized"]) as (_, client):
        agent_id = user["agent_ids"][0]
        for path in ("/api/v1/agents", "/api/v1/dashboard/overview", "/api/v1/dashboard/analytics",
                     "/api/v1/activity", f"/api/v1/agents/{agent_id}", "/healthz",
                     "/readyz", "/metrics"):
            response = await client.get(path, headers=headers)
            assert response.status_code == 200, (path, response.text)
