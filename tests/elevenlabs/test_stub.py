"""The ElevenLabs stub as a real process: API shapes, auth, admin API and every fault."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from harness.stubs.elevenlabs import StubProcess, StubStartError, start_stub
from harness.stubs.elevenlabs.agents import AgentCatalog, build_agent
from harness.stubs.elevenlabs.faults import FaultConfig, FaultEngine, build_config

from .conftest import API_KEY, write_manifest

H = {"xi-api-key": API_KEY}


def get(stub: StubProcess, path: str, **kwargs: object) -> httpx.Response:
    kwargs.setdefault("headers", H)
    kwargs.setdefault("timeout", 5)
    return httpx.get(stub.url + path, **kwargs)  # type: ignore[arg-type]


# -- API surface --------------------------------------------------------------

def test_get_agent_shape_and_determinism(stub: StubProcess, agent_ids: list[str]) -> None:
    r = get(stub, f"/v1/convai/agents/{agent_ids[0]}")
    assert r.status_code == 200
    body = r.json()
    assert body["agent_id"] == agent_ids[0] and body["name"] == "Sales Assistant 1"
    agent = body["conversation_config"]["agent"]
    assert agent["first_message"] and agent["language"]
    assert set(agent["prompt"]) >= {"prompt", "llm", "temperature"}
    assert set(body["conversation_config"]["tts"]) >= {"model_id", "voice_id"}
    assert set(body["metadata"]) == {"created_at_unix_secs", "updated_at_unix_secs"}
    assert isinstance(body["tags"], list)
    # Same id -> same config, in this process and in a fresh catalogue.
    assert get(stub, f"/v1/convai/agents/{agent_ids[0]}").json() == body
    assert build_agent(agent_ids[0], "Sales Assistant 1",
                       anchor=dt.date(2026, 11, 29)).config == body


def test_auth_and_not_found(stub: StubProcess, agent_ids: list[str]) -> None:
    for headers in ({}, {"xi-api-key": "wrong"}):
        r = get(stub, f"/v1/convai/agents/{agent_ids[0]}", headers=headers)
        assert r.status_code == 401
        assert r.json()["detail"]["status"] == "invalid_api_key"
        assert r.json()["detail"]["message"]
    r = get(stub, "/v1/convai/agents/agent_does_not_exist")
    assert r.status_code == 404 and isinstance(r.json()["detail"], dict)
    assert r.json()["detail"]["code"] == "agent_not_found"


def test_list_pagination_and_search(stub: StubProcess, agent_ids: list[str]) -> None:
    seen: list[str] = []
    cursor = None
    while True:
        params = {"page_size": 7} | ({"cursor": cursor} if cursor else {})
        page = get(stub, "/v1/convai/agents", params=params).json()
        assert set(page) == {"agents", "next_cursor", "has_more"}
        seen += [a["agent_id"] for a in page["agents"]]
        for item in page["agents"]:
            assert set(item) >= {"agent_id", "name", "tags", "created_at_unix_secs"}
        if not page["has_more"]:
            assert page["next_cursor"] is None
            break
        cursor = page["next_cursor"]
    assert sorted(seen) == sorted(agent_ids)
    found = get(stub, "/v1/convai/agents", params={"search": "assistant 12"}).json()
    assert [a["name"] for a in found["agents"]] == ["Sales Assistant 12"]
    assert get(stub, "/v1/convai/agents", params={"page_size": 101}).status_code == 422
    assert get(stub, "/v1/convai/agents", params={"page_size": 100}).status_code == 200
    assert get(stub, "/v1/convai/agents", params={"cursor": "nope"}).status_code == 422


def test_manifest_fallback_to_users() -> None:
    catalog = AgentCatalog.from_manifest_data(
        {"users": [{"user_id": 1, "elevenlabs_agent_ids": ["agent_x", "agent_y"]},
                   {"user_id": 2, "elevenlabs_agent_ids": ["agent_y"]}]})
    page = catalog.page(page_size=10, cursor=None, search=None)
    assert sorted(a["agent_id"] for a in page["agents"]) == ["agent_x", "agent_y"]
    assert len(catalog) == 2 and catalog.get("agent_y") is not None and not page["has_more"]


# -- admin API ----------------------------------------------------------------

def test_admin_faults_roundtrip_and_validation(stub: StubProcess) -> None:
    cfg = stub.admin.set_faults(preset="slow")
    assert cfg.latency.kind == "lognormal" and cfg.latency.median_ms == 300
    assert stub.admin.faults() == cfg
    cfg = stub.admin.set_faults(preset="flaky", error_statuses=[502])
    assert cfg.error_rate == 0.2 and cfg.error_statuses == [502]
    for bad in ({"error_rate": 2}, {"preset": "nope"}, {"unknown": 1},
                {"error_rate": 0.6, "hang_rate": 0.6}):
        r = httpx.post(stub.url + "/__admin/faults", json=bad)
        assert r.status_code == 422, bad
    assert stub.admin.faults() == cfg  # a rejected body changes nothing


async def test_admin_async_and_stats(stub: StubProcess, agent_ids: list[str]) -> None:
    await stub.admin.aset_faults(per_agent={agent_ids[0]: {"error_rate": 1.0,
                                                           "error_statuses": [502]}})
    async with httpx.AsyncClient(base_url=stub.url, headers=H) as c:
        for agent in agent_ids[:3]:
            await c.get(f"/v1/convai/agents/{agent}")
        await c.get("/v1/convai/agents/unknown_agent")
        await c.get("/v1/convai/agents")
    stats = await stub.admin.astats()
    assert stats.total == 5
    assert stats.requests_for(agent_ids[0]) == 1 and stats.by_agent["__list__"] == 1
    assert stats.by_status == {"502": 1, "200": 3, "404": 1}
    assert stats.by_fault == {"error": 1, "none": 4}
    assert stats.by_agent_status[agent_ids[0]] == {"502": 1}
    assert (await stub.admin.areset_stats()).total == 0
    assert (await stub.admin.afaults()).per_agent[agent_ids[0]].error_rate == 1.0


# -- faults -------------------------------------------------------------------

def test_fixed_latency(stub: StubProcess, agent_ids: list[str]) -> None:
    stub.admin.set_faults(latency={"kind": "fixed", "fixed_ms": 150})
    started = time.monotonic()
    assert get(stub, f"/v1/convai/agents/{agent_ids[0]}").status_code == 200
    assert time.monotonic() - started >= 0.15


def test_rate_limit_bodies_and_headers(stub: StubProcess, agent_ids: list[str]) -> None:
    for kind in ("rate_limit_exceeded", "concurrent_limit_exceeded"):
        stub.admin.set_faults(rate_limit_rate=1.0, rate_limit_kind=kind, retry_after_s=2)
        r = get(stub, f"/v1/convai/agents/{agent_ids[0]}")
        assert r.status_code == 429 and r.headers["retry-after"] == "2"
        assert r.json()["detail"]["code"] == kind == r.json()["detail"]["status"]


async def test_concurrency_limit(stub: StubProcess, agent_ids: list[str]) -> None:
    stub.admin.set_faults(max_concurrency=3, latency={"kind": "fixed", "fixed_ms": 200},
                          retry_after_s=0.5)
    async with httpx.AsyncClient(base_url=stub.url, headers=H) as c:
        responses = await asyncio.gather(*(c.get(f"/v1/convai/agents/{a}")
                                           for a in agent_ids[:8]))
    limited = [r for r in responses if r.status_code == 429]
    assert sum(r.status_code == 200 for r in responses) == 3 and len(limited) == 5
    for r in limited:
        assert r.json()["detail"]["code"] == "concurrent_limit_exceeded"
        assert r.headers["maximum-concurrent-requests"] == "3"
        assert int(r.headers["current-concurrent-requests"]) > 3
        assert r.headers["retry-after"] == "0.5"


def test_error_rate_is_deterministic_per_seed(stub: StubProcess, agent_ids: list[str]) -> None:
    def run() -> list[int]:
        stub.admin.set_faults(preset="flaky", seed=99)
        with httpx.Client(base_url=stub.url, headers=H) as c:
            return [c.get(f"/v1/convai/agents/{a}").status_code for a in agent_ids * 3]

    first = run()
    assert first == run()
    errors = sum(s >= 500 for s in first)
    assert 3 <= errors <= 25  # ~20% of 60
    assert set(first) <= {200, 500, 502, 503}


def test_connection_reset_is_a_transport_error(stub: StubProcess,
                                               agent_ids: list[str]) -> None:
    stub.admin.set_faults(reset_rate=1.0)
    with pytest.raises(httpx.TransportError):
        get(stub, f"/v1/convai/agents/{agent_ids[0]}")
    stats = stub.admin.stats()
    assert stats.by_fault == {"reset": 1} and stats.by_status == {"none": 1}
    assert stub.is_running()


def test_hang_released_when_client_gives_up(stub: StubProcess, agent_ids: list[str]) -> None:
    stub.admin.set_faults(per_agent={agent_ids[0]: {"hang_rate": 1.0}})
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        get(stub, f"/v1/convai/agents/{agent_ids[0]}", timeout=0.3)
    assert time.monotonic() - started < 2
    assert get(stub, f"/v1/convai/agents/{agent_ids[1]}").status_code == 200
    deadline = time.monotonic() + 3
    while stub.admin.stats().in_flight and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stub.admin.stats().in_flight == 0  # the hung request noticed the disconnect


def test_outage_window(stub: StubProcess, agent_ids: list[str]) -> None:
    stub.admin.set_faults(outage={"start_after_s": 0, "duration_s": 0.5})
    assert get(stub, f"/v1/convai/agents/{agent_ids[0]}").status_code == 503
    time.sleep(0.6)
    assert get(stub, f"/v1/convai/agents/{agent_ids[0]}").status_code == 200
    stub.admin.set_faults(outage={"start_after_s": 0.3, "duration_s": None})
    assert get(stub, f"/v1/convai/agents/{agent_ids[0]}").status_code == 200
    time.sleep(0.4)
    r = get(stub, f"/v1/convai/agents/{agent_ids[0]}")
    assert r.status_code == 503 and r.json()["detail"]["code"] == "service_unavailable"


# -- fault engine (pure) ------------------------------------------------------

def test_lognormal_latency_matches_median_and_p99() -> None:
    engine = FaultEngine(build_config("slow"), seed=5)
    samples = sorted(engine.decide(f"a{i}", 1).delay_s for i in range(4000))
    assert 0.27 < samples[2000] < 0.33
    assert 1.2 < samples[3960] < 1.9


def test_per_agent_override_is_partial() -> None:
    cfg = FaultConfig.model_validate({"error_rate": 0.1, "latency": {"kind": "fixed",
                                                                     "fixed_ms": 5},
                                      "per_agent": {"a": {"hang_rate": 0.5}}})
    eff = cfg.for_agent("a")
    assert eff.hang_rate == 0.5 and eff.error_rate == 0.1 and eff.latency.fixed_ms == 5
    assert cfg.for_agent("b") is cfg
    with pytest.raises(ValidationError):
        FaultConfig.model_validate({"per_agent": {"a": {"per_agent": {}}}})


# -- process management -------------------------------------------------------

def test_start_failure_reports_log_tail(tmp_path: Path) -> None:
    with pytest.raises(StubStartError, match="configuration error"):
        start_stub(tmp_path / "missing.json", "k", log_path=tmp_path / "stub.log")
    with pytest.raises(KeyError):
        start_stub(tmp_path / "missing.json", "k", faults="no_such_preset")


def test_cli_ready_line_and_clean_sigterm(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "m.json", n_agents=2)
    proc = subprocess.Popen([sys.executable, "-m", "harness.stubs.elevenlabs", "--manifest",
                             str(manifest), "--port", "0", "--api-key", "k", "--faults",
                             "outage", "--outage-for", "30", "--latency-ms", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = json.loads(line)["stub_url"]
        assert url.startswith("http://127.0.0.1:")
        cfg = httpx.get(url + "/__admin/faults").json()
        assert cfg["outage"]["duration_s"] == 30 and cfg["latency"]["fixed_ms"] == 1
    finally:
        proc.terminate()
        assert proc.wait(10) == 0
    assert proc.stdout.read() == ""  # exactly one line on stdout
