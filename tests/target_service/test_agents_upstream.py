"""The agents routes against a real ElevenLabs stub process: live, degraded, recovered.

The stub is started from the same dataset manifest the database was seeded
from, so agent ids line up; retry schedules are scaled down (10 ms base).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from harness.analysis import exposition
from harness.stubs.elevenlabs import StubProcess
from target_service.elevenlabs.settings import ElevenLabsSettings
from tests.conftest import auth, busiest_user, healthy_stub_for, running_app

KEY = "xi_test_service_key_0b1c2d3e"


@pytest.fixture(scope="module")
def stub(datasets, tmp_path_factory) -> Iterator[StubProcess]:
    with healthy_stub_for(datasets.manifest, tmp_path_factory.mktemp("stub"), KEY,
                          fault_seed=99) as process:
        yield process


@pytest.fixture(scope="module")
async def dbs(datasets) -> dict[str, str]:
    """Private clones: live fetches write snapshots, which must not leak into other tests."""
    made = {p: await datasets.clone(p) for p in ("optimized", "naive")}
    yield made
    for dsn in made.values():
        await datasets.drop(dsn)


@pytest.fixture
def healthy_stub(stub: StubProcess) -> StubProcess:
    stub.admin.set_faults(preset="healthy")
    stub.admin.reset_stats()
    return stub


def upstream(stub: StubProcess, **overrides) -> ElevenLabsSettings:
    values = {"base_url": stub.url, "api_key": KEY, "retry_base_delay_s": 0.01,
              "attempt_timeout_s": 0.5, "request_deadline_s": 1.5, "page_budget_s": 1.5,
              "breaker_cooldown_s": 0.5}
    return ElevenLabsSettings(**(values | overrides))


def metric(text: str, name: str, **labels: str) -> float:
    """A sample summed over label sets, read the way the harness reads it."""
    return exposition.total(exposition.parse(text), name, **labels)


@pytest.fixture
def user(datasets) -> dict:
    return busiest_user(datasets.manifest)


async def test_healthy_upstream_is_live_then_cached(dbs, healthy_stub, user):
    async with running_app(dbs["optimized"],
                           elevenlabs=upstream(healthy_stub)) as (_, client):
        first = (await client.get("/api/v1/agents", headers=auth(user["api_key"]))).json()
        assert first["degraded"] is False and first["fallback_count"] == 0
        assert {a["config_source"] for a in first["agents"]} == {"live"}
        for agent in first["agents"]:
            assert agent["config"]["agent_id"] == agent["elevenlabs_agent_id"]
            assert agent["config_cached"] is False
        second = (await client.get("/api/v1/agents", headers=auth(user["api_key"]))).json()
        assert all(a["config_source"] == "live" and a["config_cached"]
                   for a in second["agents"])
    # one upstream request per agent: the second page came from the cache
    assert healthy_stub.admin.stats().total == len(user["agent_ids"])


async def test_live_fetch_refreshes_the_stored_snapshot(fresh_db, healthy_stub, user):
    dsn = await fresh_db("optimized")
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("UPDATE agents SET config_snapshot = NULL, snapshot_updated_at = NULL "
                           "WHERE user_id = $1", user["user_id"])
        async with running_app(dsn, elevenlabs=upstream(healthy_stub)) as (app, client):
            r = await client.get("/api/v1/agents", headers=auth(user["api_key"]))
            assert r.status_code == 200
            assert await app.state.resources.jobs.drain(timeout=10)
        missing = await conn.fetchval(
            "SELECT count(*) FROM agents WHERE user_id = $1 AND config_snapshot IS NULL",
            user["user_id"])
        assert missing == 0
        stored = json.loads(await conn.fetchval(
            "SELECT config_snapshot FROM agents WHERE id = $1", user["agent_ids"][0]))
        assert stored["conversation_config"]["agent"]["first_message"]
    finally:
        await conn.close()


async def test_outage_degrades_to_cache_then_snapshot_within_budget(dbs, healthy_stub,
                                                                   user):
    h = auth(user["api_key"])
    async with running_app(dbs["optimized"], elevenlabs=upstream(healthy_stub),
                           config_fresh_s=0.2) as (_, client):
        assert (await client.get("/api/v1/agents", headers=h)).json()["degraded"] is False
        healthy_stub.admin.set_faults(preset="outage")
        await asyncio.sleep(0.25)  # let the fresh window pass: the cache is now a fallback
        started = time.monotonic()
        r = await client.get("/api/v1/agents", headers=h)
        elapsed = time.monotonic() - started
        assert r.status_code == 200
        body = r.json()
        assert body["degraded"] is True and body["fallback_count"] == len(body["agents"])
        assert {a["config_source"] for a in body["agents"]} == {"cache"}
        assert elapsed < 1.5 + 1.0  # the page budget, plus slack for a busy machine
        one = await client.get(f"/api/v1/agents/{user['agent_ids'][0]}", headers=h)
        assert one.status_code == 200 and one.json()["degraded"] is True
    # with no cache (naive profile) the stored snapshot is the fallback
    async with running_app(dbs["naive"], "naive",
                           elevenlabs=upstream(healthy_stub)) as (_, client):
        body = (await client.get("/api/v1/agents", headers=h)).json()
        assert body["degraded"] is True
        assert {a["config_source"] for a in body["agents"]} <= {"database", "unavailable"}
        for a in body["agents"]:
            assert (a["config"] is None) == (a["config_source"] == "unavailable")


async def test_flaky_retries_match_what_the_stub_saw(dbs, healthy_stub, user):
    healthy_stub.admin.set_faults(preset="flaky")
    async with running_app(dbs["optimized"], elevenlabs=upstream(healthy_stub),
                           config_fresh_s=0.001) as (_, client):
        for _ in range(5):
            r = await client.get("/api/v1/agents", headers=auth(user["api_key"]))
            assert r.status_code == 200
            await asyncio.sleep(0.01)
        text = (await client.get("/metrics")).text
    seen = healthy_stub.admin.stats().total
    logical = metric(text, "elevenlabs_requests_total")
    attempts = metric(text, "elevenlabs_attempts_total")
    retries = metric(text, "elevenlabs_retries_total")
    assert attempts == seen
    assert retries == seen - logical > 0


async def test_naive_profile_fetches_sequentially_without_retries(dbs, healthy_stub,
                                                                 user):
    healthy_stub.admin.set_faults(preset="flaky")
    async with running_app(dbs["naive"], "naive",
                           elevenlabs=upstream(healthy_stub)) as (_, client):
        for _ in range(3):
            await client.get("/api/v1/agents", headers=auth(user["api_key"]))
        text = (await client.get("/metrics")).text
    assert metric(text, "elevenlabs_retries_total") == 0
    assert metric(text, "elevenlabs_attempts_total") == healthy_stub.admin.stats().total
    assert healthy_stub.admin.stats().max_in_flight == 1


async def test_one_hanging_agent_does_not_hold_the_others(dbs, healthy_stub, user):
    slow = user["elevenlabs_agent_ids"][0]
    healthy_stub.admin.set_faults(config={"per_agent": {slow: {"hang_rate": 1.0}}})
    async with running_app(dbs["optimized"], elevenlabs=upstream(healthy_stub),
                           config_fresh_s=0.001) as (_, client):
        started = time.monotonic()
        body = (await client.get("/api/v1/agents", headers=auth(user["api_key"]))).json()
        elapsed = time.monotonic() - started
    sources = {a["elevenlabs_agent_id"]: a["config_source"] for a in body["agents"]}
    assert sources.pop(slow) != "live"
    assert set(sources.values()) == {"live"}
    assert body["fallback_count"] == 1
    assert elapsed < 1.5 + 1.0


async def test_api_key_never_in_logs_or_metrics(dbs, healthy_stub, user, caplog):
    healthy_stub.admin.set_faults(preset="flaky")
    caplog.set_level("DEBUG")
    async with running_app(dbs["optimized"], elevenlabs=upstream(healthy_stub),
                           config_fresh_s=0.001) as (_, client):
        for _ in range(3):
            await client.get("/api/v1/agents", headers=auth(user["api_key"]))
        text = (await client.get("/metrics")).text
    assert any("ElevenLabs" in r.getMessage() for r in caplog.records)  # failures were logged
    logged = "\n".join(r.getMessage() + repr(r.__dict__) for r in caplog.records)
    assert KEY not in logged and KEY not in text
    assert KEY not in Path(healthy_stub.log_path).read_text()
