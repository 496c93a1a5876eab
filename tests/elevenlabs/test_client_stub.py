"""The client against the real stub process, with the retry schedule scaled down.

Counts are checked on both sides: what the client's metrics say it did and
what the stub's ``/__admin/stats`` say it saw.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest

from harness.stubs.elevenlabs import StubProcess
from harness.stubs.elevenlabs.faults import FaultEngine, build_config
from target_service.elevenlabs import (
    AgentNotFound,
    AuthenticationFailed,
    BreakerState,
    CircuitOpen,
    ElevenLabsClient,
    RateLimited,
    UpstreamUnavailable,
)

from .conftest import API_KEY, ClientFactory, fast_settings


def agent_with_sequence(agent_ids: list[str], faults: dict[str, Any],
                        kinds: list[str]) -> str:
    """An agent whose first fault decisions are ``kinds`` under ``faults``.

    The stub seeds each agent's draws by (seed, agent, request number), so the
    same engine run locally predicts exactly what the stub will do.
    """
    for agent_id in agent_ids:
        engine = FaultEngine(build_config(None, faults))
        if [engine.decide(agent_id, 1).kind for _ in kinds] == kinds:
            return agent_id
    raise AssertionError(f"no agent with fault sequence {kinds}; change the seed")


class RecordingSleep:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        await asyncio.sleep(seconds)


async def test_healthy_page(stub: StubProcess, make_client: ClientFactory,
                            agent_ids: list[str]) -> None:
    client = make_client()
    results = await client.get_agents(agent_ids)
    assert list(results) == agent_ids
    assert all(r.ok and r.attempts == 1 for r in results.values())
    assert results[agent_ids[0]].config.name == "Sales Assistant 1"  # type: ignore[union-attr]
    stats = await stub.admin.astats()
    assert stats.total == 20 and stats.by_status == {"200": 20}
    assert client.metrics.value("elevenlabs_attempts_total") == 20
    assert client.metrics.total("elevenlabs_retries_total") == 0
    assert client.metrics.value("elevenlabs_requests_total", result="success") == 20
    assert client.metrics.value("elevenlabs_in_flight_requests") == 0


async def test_flaky_retries_match_what_the_stub_saw(stub: StubProcess,
                                                     make_client: ClientFactory,
                                                     agent_ids: list[str]) -> None:
    await stub.admin.aset_faults(preset="flaky", seed=2024)
    client = make_client()
    rounds = 3
    ok = 0
    for _ in range(rounds):
        results = await client.get_agents(agent_ids)
        ok += sum(r.ok for r in results.values())
    logical = rounds * len(agent_ids)
    stats = await stub.admin.astats()
    retries = client.metrics.total("elevenlabs_retries_total")
    assert retries > 0 and stats.by_fault.get("error", 0) > 0
    assert retries == stats.total - logical
    assert client.metrics.value("elevenlabs_attempts_total") == stats.total
    assert ok >= logical - 2  # 4 attempts at 20% failure: almost always recovers
    reasons = {s.labels["reason"] for m in client.metrics.registry.collect()
               for s in m.samples if s.name == "elevenlabs_retries_total"}
    assert reasons <= {"http_500", "http_502", "http_503"}


async def test_retry_after_is_honoured(stub: StubProcess, agent_ids: list[str]) -> None:
    faults = {"rate_limit_rate": 0.5, "retry_after_s": 0.2, "seed": 11}
    agent = agent_with_sequence(agent_ids, faults, ["rate_limit", "none"])
    await stub.admin.aset_faults(**faults)
    sleep = RecordingSleep()
    async with ElevenLabsClient(fast_settings(stub.url), sleep=sleep) as client:
        started = time.monotonic()
        config = await client.get_agent(agent)
        assert time.monotonic() - started >= 0.2
    assert config.agent_id == agent
    assert sleep.waits == [0.2]  # not the 10 ms backoff
    stats = await stub.admin.astats()
    assert stats.by_agent_status[agent] == {"429": 1, "200": 1}


async def test_persistent_429_gives_up_with_rate_limited(stub: StubProcess,
                                                         agent_ids: list[str]) -> None:
    await stub.admin.aset_faults(rate_limit_rate=1.0, retry_after_s=0.05,
                                 rate_limit_kind="concurrent_limit_exceeded")
    sleep = RecordingSleep()
    async with ElevenLabsClient(fast_settings(stub.url), sleep=sleep) as client:
        with pytest.raises(RateLimited) as info:
            await client.get_agent(agent_ids[0])
    assert info.value.limit_kind == "concurrent_limit_exceeded"
    assert info.value.attempts == 4 and sleep.waits == [0.05] * 3
    assert (await stub.admin.astats()).total == 4


async def test_retry_after_longer_than_deadline_fails_fast(stub: StubProcess,
                                                           make_client: ClientFactory,
                                                           agent_ids: list[str]) -> None:
    await stub.admin.aset_faults(rate_limit_rate=1.0, retry_after_s=30)
    started = time.monotonic()
    with pytest.raises(RateLimited):
        await make_client().get_agent(agent_ids[0], deadline_s=2)
    assert time.monotonic() - started < 1.0
    assert (await stub.admin.astats()).total == 1


async def test_401_and_404_are_not_retried(stub: StubProcess, make_client: ClientFactory,
                                           agent_ids: list[str]) -> None:
    with pytest.raises(AuthenticationFailed) as auth:
        await make_client(api_key="not-the-key").get_agent(agent_ids[0])
    with pytest.raises(AgentNotFound) as missing:
        await make_client().get_agent("agent_not_in_the_manifest")
    assert auth.value.attempts == 1 and missing.value.attempts == 1
    stats = await stub.admin.astats()
    assert stats.total == 2 and stats.by_status == {"401": 1, "404": 1}
    results = await make_client(api_key="wrong").get_agents(agent_ids[:5])
    assert {r.reason for r in results.values()} == {"auth"}
    assert all(r.attempts == 1 for r in results.values())
    assert (await stub.admin.astats()).total == 7


async def test_outage_fails_every_agent_fast(stub: StubProcess, make_client: ClientFactory,
                                             agent_ids: list[str]) -> None:
    await stub.admin.aset_faults(preset="outage", retry_after_s=1)
    client = make_client(breaker_failure_threshold=5)
    budget = 1.0
    started = time.monotonic()
    results = await client.get_agents(agent_ids, budget_s=budget)
    elapsed = time.monotonic() - started
    assert elapsed < budget + 1.0
    assert all(r.failed for r in results.values())
    assert {r.reason for r in results.values()} <= {"http_503", "circuit_open"}
    assert all(r.elapsed_s < budget + 0.5 for r in results.values())
    stats = await stub.admin.astats()
    assert stats.total <= len(agent_ids)  # Retry-After beyond the budget: no retries
    assert set(stats.by_fault) == {"outage"}


async def test_hang_on_one_agent_does_not_delay_the_others(stub: StubProcess,
                                                           make_client: ClientFactory,
                                                           agent_ids: list[str]) -> None:
    hung = agent_ids[3]
    await stub.admin.aset_faults(per_agent={hung: {"hang_rate": 1.0}})
    client = make_client(attempt_timeout_s=0.3, request_deadline_s=1.0)
    budget = 2.0
    started = time.monotonic()
    results = await client.get_agents(agent_ids, budget_s=budget)
    elapsed = time.monotonic() - started
    assert elapsed < budget + 1.0
    assert results[hung].failed and results[hung].reason in ("timeout", "deadline")
    assert results[hung].elapsed_s < 1.0 + 0.5
    others = [r for a, r in results.items() if a != hung]
    assert all(r.ok for r in others)
    assert max(r.elapsed_s for r in others) < results[hung].elapsed_s
    assert client.metrics.value("elevenlabs_timeouts_total", kind="attempt") >= 1


async def test_circuit_opens_and_closes(stub: StubProcess, make_client: ClientFactory,
                                        agent_ids: list[str]) -> None:
    await stub.admin.aset_faults(preset="outage", retry_after_s=0)
    # a cooldown far longer than the open-state checks take, even on a loaded machine (CI saw
    # 0.3 s run out before `get_agents`, so a half-open probe reached the stub)
    client = make_client(breaker_failure_threshold=3, breaker_cooldown_s=2.0)
    with pytest.raises(CircuitOpen):
        await client.get_agent(agent_ids[0])  # attempts 1-3 fail, the 4th is refused
    assert client.breaker_state is BreakerState.OPEN
    assert (await stub.admin.astats()).total == 3
    started = time.monotonic()
    results = await client.get_agents(agent_ids)
    assert time.monotonic() - started < 0.5
    assert {r.reason for r in results.values()} == {"circuit_open"}
    assert (await stub.admin.astats()).total == 3  # upstream left alone while open
    assert client.metrics.value("elevenlabs_circuit_breaker_state") == 2

    await stub.admin.aset_faults(preset="healthy")
    await asyncio.sleep(2.05)
    assert client.breaker_state is BreakerState.HALF_OPEN
    config = await client.get_agent(agent_ids[0])  # the probe succeeds
    assert config.agent_id == agent_ids[0]
    assert client.breaker_state is BreakerState.CLOSED
    assert client.metrics.value("elevenlabs_circuit_breaker_state") == 0
    for state in ("open", "half_open", "closed"):
        assert client.metrics.value("elevenlabs_circuit_breaker_transitions_total",
                                    to_state=state) == 1
    results = await client.get_agents(agent_ids)
    assert all(r.ok for r in results.values())


async def test_connection_reset_is_retried(stub: StubProcess, make_client: ClientFactory,
                                           agent_ids: list[str]) -> None:
    faults = {"reset_rate": 0.5, "seed": 5}
    agent = agent_with_sequence(agent_ids, faults, ["reset", "none"])
    await stub.admin.aset_faults(**faults)
    client = make_client()
    assert (await client.get_agent(agent)).agent_id == agent
    assert client.metrics.value("elevenlabs_retries_total", reason="transport") == 1
    stats = await stub.admin.astats()
    assert stats.by_fault == {"reset": 1, "none": 1} and stats.total == 2

    await stub.admin.aset_faults(per_agent={agent_ids[0]: {"reset_rate": 1.0}})
    await stub.admin.areset_stats()
    with pytest.raises(UpstreamUnavailable) as info:
        await client.get_agent(agent_ids[0])
    assert info.value.reason == "transport" and info.value.attempts == 4
    assert (await stub.admin.astats()).by_fault["reset"] == 4


async def test_client_limit_keeps_under_upstream_concurrency(stub: StubProcess,
                                                             make_client: ClientFactory,
                                                             agent_ids: list[str]) -> None:
    await stub.admin.aset_faults(max_concurrency=3, latency={"kind": "fixed", "fixed_ms": 30})
    results = await make_client(max_concurrency=3).get_agents(agent_ids)
    assert all(r.ok for r in results.values())
    stats = await stub.admin.astats()
    assert stats.by_status == {"200": 20} and stats.max_in_flight <= 3


async def test_naive_profile_is_sequential_without_retries(stub: StubProcess,
                                                           make_client: ClientFactory,
                                                           agent_ids: list[str]) -> None:
    await stub.admin.aset_faults(preset="flaky", seed=7)
    client = make_client(parallel=False, retries=False)
    results = await client.get_agents(agent_ids)
    stats = await stub.admin.astats()
    assert stats.total == 20 and stats.max_in_flight == 1
    failed = [r for r in results.values() if r.failed]
    assert len(failed) == stats.by_fault.get("error", 0)
    assert client.metrics.total("elevenlabs_retries_total") == 0


async def test_api_key_never_logged(stub: StubProcess, make_client: ClientFactory,
                                    agent_ids: list[str],
                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    await stub.admin.aset_faults(error_rate=0.3, reset_rate=0.2, seed=3,
                                 per_agent={agent_ids[0]: {"hang_rate": 1.0}})
    client = make_client(attempt_timeout_s=0.2, request_deadline_s=0.6)
    results = await client.get_agents([*agent_ids, "agent_unknown"])
    assert any(r.failed for r in results.values())
    assert any(r.name == "target_service.elevenlabs" for r in caplog.records)
    assert any(r.name.startswith(("httpx", "httpcore")) for r in caplog.records)
    assert API_KEY not in caplog.text
    for r in results.values():
        if r.error is not None:
            assert API_KEY not in str(r.error) and API_KEY not in repr(r.error)
