"""Circuit breaker state machine and the metrics class, without any network."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import prometheus_client
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from target_service.elevenlabs import (
    BreakerState,
    CircuitBreaker,
    CircuitOpen,
    ElevenLabsClient,
    ElevenLabsMetrics,
    ElevenLabsSettings,
    UpstreamUnavailable,
    build_http_client,
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_after_threshold_and_recovers() -> None:
    clock, changes = Clock(), []
    breaker = CircuitBreaker(3, 10.0, clock=clock, on_state_change=changes.append)
    for _ in range(2):
        assert breaker.try_acquire()
        breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.try_acquire()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert not breaker.try_acquire()
    assert breaker.retry_in() == pytest.approx(10.0)
    clock.now = 10.0
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.try_acquire()          # the one probe
    assert not breaker.try_acquire()      # nobody else while it runs
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED and breaker.try_acquire()
    assert changes == [BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.CLOSED]


def test_success_resets_the_consecutive_count() -> None:
    breaker = CircuitBreaker(3, 1.0, clock=Clock())
    for _ in range(5):
        breaker.record_failure()
        breaker.record_failure()
        breaker.record_success()
    assert breaker.state is BreakerState.CLOSED and breaker.consecutive_failures == 0


def test_failed_probe_reopens_for_a_new_cooldown() -> None:
    clock = Clock()
    breaker = CircuitBreaker(1, 5.0, clock=clock)
    breaker.record_failure()
    clock.now = 5.0
    assert breaker.try_acquire()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN and breaker.opened_count == 2
    clock.now = 9.0
    assert breaker.state is BreakerState.OPEN
    clock.now = 10.0
    assert breaker.state is BreakerState.HALF_OPEN


def test_released_probe_frees_the_slot() -> None:
    clock = Clock()
    breaker = CircuitBreaker(1, 1.0, clock=clock)
    breaker.record_failure()
    clock.now = 1.0
    assert breaker.try_acquire()
    breaker.release()  # e.g. a 429 or a cancelled request: no verdict
    assert breaker.state is BreakerState.HALF_OPEN and breaker.try_acquire()
    snap = breaker.snapshot()
    assert snap.state is BreakerState.HALF_OPEN and snap.failure_threshold == 1


async def test_client_fails_fast_when_open_and_exports_state() -> None:
    calls: list[httpx.Request] = []
    clock = Clock()

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(503, json={"detail": {}})

    async def no_sleep(_: float) -> None:
        await asyncio.sleep(0)

    settings = ElevenLabsSettings(base_url="https://x.test", api_key="k",
                                  breaker_failure_threshold=2, breaker_cooldown_s=30)
    metrics = ElevenLabsMetrics(CollectorRegistry())
    async with build_http_client(settings, transport=httpx.MockTransport(handler)) as http:
        client = ElevenLabsClient(settings, http, metrics=metrics, sleep=no_sleep, clock=clock)
        with pytest.raises(CircuitOpen) as info:
            await client.get_agent("agent_a")  # 2 failed attempts open it mid-retry
        assert len(calls) == 2 and info.value.reason == "circuit_open"
        assert client.breaker_state is BreakerState.OPEN
        assert metrics.value("elevenlabs_circuit_breaker_state") == 2
        with pytest.raises(CircuitOpen):
            await client.get_agent("agent_b")
        assert len(calls) == 2  # upstream not called while open
        results = await client.get_agents(["agent_c", "agent_d"])
        assert {r.reason for r in results.values()} == {"circuit_open"} and len(calls) == 2
        assert metrics.value("elevenlabs_failures_total", reason="circuit_open") == 4
        clock.now = 30.0
        with pytest.raises(UpstreamUnavailable):  # the probe goes out, fails, re-opens
            await client.get_agent("agent_e", deadline_s=0.5)
        assert len(calls) == 3 and client.breaker_state is BreakerState.OPEN


def test_metrics_names_and_no_import_time_registration() -> None:
    default_names = {m.name for m in prometheus_client.REGISTRY.collect()}
    assert not any(name.startswith("elevenlabs") for name in default_names)
    metrics = ElevenLabsMetrics(CollectorRegistry())
    ElevenLabsMetrics(CollectorRegistry())  # a second instance never collides
    text = generate_latest(metrics.registry).decode()
    for name in ("elevenlabs_upstream_request_duration_seconds_bucket",
                 "elevenlabs_requests_total", "elevenlabs_attempts_total",
                 "elevenlabs_retries_total", "elevenlabs_failures_total",
                 "elevenlabs_timeouts_total", "elevenlabs_fallbacks_total",
                 "elevenlabs_circuit_breaker_state", "elevenlabs_in_flight_requests"):
        assert name in text, name
    assert metrics.in_flight._multiprocess_mode == "livesum"
    assert metrics.breaker_state._multiprocess_mode == "livemax"
    metrics.record_fallback("database")
    assert metrics.value("elevenlabs_fallbacks_total", source="database") == 1
    with pytest.raises(ValueError):
        metrics.record_fallback("somewhere")


def test_settings_defaults_and_validation() -> None:
    s = ElevenLabsSettings()
    assert (s.retry_base_delay_s, s.retry_multiplier, s.max_retries) == (1.0, 2.0, 3)
    assert s.max_concurrency == 24 and s.parallel and s.retries
    assert "secret" not in repr(ElevenLabsSettings(api_key="secret"))
    naive = ElevenLabsSettings(parallel=False, retries=False)
    assert naive.max_attempts == 1
    bad: dict[str, Any] = {"max_concurrency": 10, "max_connections": 4}
    with pytest.raises(ValueError):
        ElevenLabsSettings(**bad)


def test_settings_nest_under_the_service_env_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import Field
    from pydantic_settings import BaseSettings, SettingsConfigDict

    class ServiceSettings(BaseSettings):  # what target_service/settings.py will do
        model_config = SettingsConfigDict(env_prefix="TARGET_", env_nested_delimiter="__")
        elevenlabs: ElevenLabsSettings = Field(default_factory=ElevenLabsSettings)

    monkeypatch.setenv("TARGET_ELEVENLABS__API_KEY", "from-env")
    monkeypatch.setenv("TARGET_ELEVENLABS__RETRY_BASE_DELAY_S", "0.01")
    monkeypatch.setenv("TARGET_ELEVENLABS__PARALLEL", "false")
    s = ServiceSettings().elevenlabs
    assert s.api_key.get_secret_value() == "from-env"
    assert s.backoff_schedule() == [0.01, 0.02, 0.04] and not s.parallel
