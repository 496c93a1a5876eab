"""Retry, deadline and parallel-fetch logic of the client, against ``httpx.MockTransport``.

A fake clock and a fake sleep let the *default* schedule (1 s, 2 s, 4 s) run
without sleeping: the fake sleep records the wait and advances the clock.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from harness.stubs.elevenlabs.agents import build_agent
from target_service.elevenlabs import (
    AgentConfig,
    AgentNotFound,
    AuthenticationFailed,
    ElevenLabsClient,
    ElevenLabsSettings,
    InvalidRequest,
    InvalidResponse,
    RateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
    build_http_client,
)
from target_service.elevenlabs.retry import BackoffWait, parse_retry_after

KEY = "xi_unit_secret_key_8d1f0e"
AGENT = "agent_unit0000000000000000000000"


class FakeTime:
    """Clock + sleep pair: sleeping records the wait and moves the clock."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def agent_body(agent_id: str = AGENT) -> dict[str, Any]:
    return build_agent(agent_id, "Unit Agent").config


Handler = Callable[[httpx.Request], Any]


@pytest.fixture
async def mock_client() -> AsyncIterator[Callable[..., ElevenLabsClient]]:
    https: list[httpx.AsyncClient] = []

    def factory(handler: Handler, fake: FakeTime | None = None,
                **overrides: Any) -> ElevenLabsClient:
        settings = ElevenLabsSettings(base_url="https://api.elevenlabs.test", api_key=KEY,
                                      **overrides)
        http = build_http_client(settings, transport=httpx.MockTransport(handler))
        https.append(http)
        if fake is None:
            return ElevenLabsClient(settings, http)
        return ElevenLabsClient(settings, http, sleep=fake.sleep, clock=fake.clock)

    yield factory
    for http in https:
        await http.aclose()


def always(status: int, calls: list[httpx.Request], **kwargs: Any) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if status == 200:
            return httpx.Response(200, json=agent_body(request.url.path.rsplit("/", 1)[-1]))
        return httpx.Response(status, json={"detail": {"status": "x", "message": "m"}},
                              **kwargs)
    return handler


def test_default_schedule_is_1_2_4_seconds() -> None:
    settings = ElevenLabsSettings()
    assert settings.max_retries == 3 and settings.max_attempts == 4
    assert settings.backoff_schedule() == [1.0, 2.0, 4.0]
    wait = BackoffWait(settings)

    class State:  # the two attributes the wait strategy reads
        def __init__(self, n: int) -> None:
            self.attempt_number = n
            self.outcome = None

    assert [wait(State(n)) for n in (1, 2, 3)] == [1.0, 2.0, 4.0]  # type: ignore[arg-type]


async def test_default_schedule_really_used(mock_client: Any) -> None:
    fake, calls = FakeTime(), []
    client = mock_client(always(503, calls), fake)
    with pytest.raises(UpstreamUnavailable) as info:
        await client.get_agent(AGENT)
    assert fake.sleeps == [1.0, 2.0, 4.0]
    assert len(calls) == 4 and info.value.attempts == 4
    assert info.value.reason == "http_503" and info.value.status_code == 503
    assert client.metrics.value("elevenlabs_retries_total", reason="http_503") == 3
    assert client.metrics.value("elevenlabs_attempts_total") == 4


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
async def test_retryable_statuses(mock_client: Any, status: int) -> None:
    fake, calls = FakeTime(), []
    client = mock_client(always(status, calls), fake)
    with pytest.raises((UpstreamUnavailable, UpstreamTimeout)):
        await client.get_agent(AGENT)
    assert len(calls) == 4


@pytest.mark.parametrize(("status", "exc"), [(400, InvalidRequest), (401, AuthenticationFailed),
                                             (403, AuthenticationFailed), (404, AgentNotFound),
                                             (422, InvalidRequest)])
async def test_non_retryable_statuses(mock_client: Any, status: int, exc: type) -> None:
    fake, calls = FakeTime(), []
    client = mock_client(always(status, calls), fake)
    with pytest.raises(exc) as info:
        await client.get_agent(AGENT)
    assert len(calls) == 1 and fake.sleeps == [] and info.value.attempts == 1


async def test_recovers_after_failures(mock_client: Any) -> None:
    fake, statuses = FakeTime(), iter([502, 429, 200])

    def handler(request: httpx.Request) -> httpx.Response:
        status = next(statuses)
        return httpx.Response(status, json=agent_body() if status == 200 else {"detail": {}})

    client = mock_client(handler, fake)
    config = await client.get_agent(AGENT)
    assert isinstance(config, AgentConfig) and config.agent_id == AGENT
    assert config.llm and config.voice_id and config.language
    assert fake.sleeps == [1.0, 2.0]


async def test_retry_after_seconds_honoured(mock_client: Any) -> None:
    fake, calls = FakeTime(), []
    client = mock_client(always(429, calls, headers={"Retry-After": "3"}), fake)
    with pytest.raises(RateLimited) as info:
        await client.get_agent(AGENT, deadline_s=30)
    assert fake.sleeps == [3.0, 3.0, 3.0]
    assert info.value.retry_after == 3.0


async def test_retry_after_http_date(mock_client: Any) -> None:
    when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=120)
    header = email.utils.format_datetime(when, usegmt=True)
    value = parse_retry_after(header)
    assert value is not None and 115 <= value <= 121
    assert parse_retry_after("garbage") is None
    assert parse_retry_after("0.25") == 0.25
    assert parse_retry_after("-5") == 0.0


async def test_retry_after_beyond_deadline_gives_up(mock_client: Any) -> None:
    fake, calls = FakeTime(), []
    client = mock_client(always(429, calls, headers={"Retry-After": "20"}), fake)
    with pytest.raises(RateLimited):
        await client.get_agent(AGENT, deadline_s=10)
    assert len(calls) == 1 and fake.sleeps == []


async def test_deadline_stops_the_schedule(mock_client: Any) -> None:
    # 5 s deadline: waits 1 + 2 fit, the 4 s wait would end past the deadline.
    fake, calls = FakeTime(), []
    client = mock_client(always(500, calls), fake)
    with pytest.raises(UpstreamUnavailable):
        await client.get_agent(AGENT, deadline_s=5)
    assert fake.sleeps == [1.0, 2.0] and len(calls) == 3


async def test_deadline_bounds_a_hanging_upstream(mock_client: Any) -> None:
    calls: list[httpx.Request] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        await asyncio.sleep(30)
        return httpx.Response(200, json=agent_body())

    client = mock_client(handler, attempt_timeout_s=0.1, retry_base_delay_s=0.01,
                         read_timeout_s=5)
    started = time.monotonic()
    with pytest.raises(UpstreamTimeout) as info:
        await client.get_agent(AGENT, deadline_s=0.5)
    assert time.monotonic() - started < 1.5
    assert info.value.reason in ("timeout", "deadline") and len(calls) >= 2
    assert client.metrics.value("elevenlabs_timeouts_total", kind="attempt") >= 2


@pytest.mark.parametrize(("exc", "expected", "reason"), [
    (httpx.ConnectError("refused"), UpstreamUnavailable, "transport"),
    (httpx.RemoteProtocolError("peer closed"), UpstreamUnavailable, "transport"),
    (httpx.ReadTimeout("slow"), UpstreamTimeout, "timeout"),
])
async def test_transport_errors_translated_and_retried(mock_client: Any, exc: Exception,
                                                       expected: type, reason: str) -> None:
    fake, calls = FakeTime(), []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise exc

    client = mock_client(handler, fake)
    with pytest.raises(expected) as info:
        await client.get_agent(AGENT)
    assert len(calls) == 4 and info.value.reason == reason
    assert info.value.__cause__ is exc  # translated at the boundary with "raise ... from"


async def test_every_response_closed(mock_client: Any) -> None:
    closed: list[int] = []
    statuses = iter([503, 429, 500, 200])

    class Tracked(httpx.AsyncByteStream):
        def __init__(self, data: bytes, status: int) -> None:
            self.data, self.status = data, status

        async def __aiter__(self) -> AsyncIterator[bytes]:
            yield self.data

        async def aclose(self) -> None:
            closed.append(self.status)

    def handler(request: httpx.Request) -> httpx.Response:
        status = next(statuses)
        payload = httpx.Response(200, json=agent_body()).content if status == 200 else b"{}"
        return httpx.Response(status, stream=Tracked(payload, status),
                              headers={"content-type": "application/json"})

    fake = FakeTime()
    await mock_client(handler, fake).get_agent(AGENT)
    assert closed == [503, 429, 500, 200]


async def test_retries_disabled_makes_one_attempt(mock_client: Any) -> None:
    fake, calls = FakeTime(), []
    client = mock_client(always(503, calls), fake, retries=False)
    with pytest.raises(UpstreamUnavailable):
        await client.get_agent(AGENT)
    assert len(calls) == 1 and fake.sleeps == []


async def test_invalid_body_is_not_retried(mock_client: Any) -> None:
    fake, calls = FakeTime(), []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, content=b"<html>oops</html>")

    with pytest.raises(InvalidResponse):
        await mock_client(handler, fake).get_agent(AGENT)
    assert len(calls) == 1


async def test_parallel_respects_concurrency_limit(mock_client: Any) -> None:
    active, peak = 0, 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.02)
        active -= 1
        return httpx.Response(200, json=agent_body(request.url.path.rsplit("/", 1)[-1]))

    ids = [f"agent_{i:028d}" for i in range(12)]
    results = await mock_client(handler, max_concurrency=3).get_agents(ids)
    assert list(results) == ids and all(r.ok for r in results.values())
    assert peak == 3


async def test_sequential_mode_runs_one_at_a_time(mock_client: Any) -> None:
    active, peak = 0, 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.005)
        active -= 1
        return httpx.Response(200, json=agent_body(request.url.path.rsplit("/", 1)[-1]))

    ids = [f"agent_{i:028d}" for i in range(5)]
    results = await mock_client(handler, parallel=False).get_agents(ids)
    assert all(r.ok for r in results.values()) and peak == 1


async def test_slow_agent_does_not_hold_the_page(mock_client: Any) -> None:
    slow = "agent_slow000000000000000000000"

    async def handler(request: httpx.Request) -> httpx.Response:
        agent_id = request.url.path.rsplit("/", 1)[-1]
        if agent_id == slow:
            await asyncio.sleep(30)
        return httpx.Response(200, json=agent_body(agent_id))

    ids = [slow] + [f"agent_{i:028d}" for i in range(8)]
    client = mock_client(handler, attempt_timeout_s=0.2, retry_base_delay_s=0.01)
    started = time.monotonic()
    results = await client.get_agents(ids, budget_s=0.6)
    elapsed = time.monotonic() - started
    assert elapsed < 0.6 + 1.0
    assert results[slow].failed and results[slow].reason in ("timeout", "deadline")
    others = [results[i] for i in ids[1:]]
    assert all(r.ok for r in others)
    assert max(r.elapsed_s for r in others) < results[slow].elapsed_s


async def test_sequential_budget_exhaustion_fails_the_rest_fast(mock_client: Any) -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.15)
        return httpx.Response(200, json=agent_body(request.url.path.rsplit("/", 1)[-1]))

    ids = [f"agent_{i:028d}" for i in range(10)]
    client = mock_client(handler, parallel=False, retries=False)
    started = time.monotonic()
    results = await client.get_agents(ids, budget_s=0.4)
    assert time.monotonic() - started < 0.4 + 1.0
    assert results[ids[0]].ok
    assert results[ids[-1]].failed and results[ids[-1]].reason == "budget"


async def test_get_agents_dedupes_and_keeps_order(mock_client: Any) -> None:
    calls: list[httpx.Request] = []
    ids = ["agent_b", "agent_a", "agent_b"]
    results = await mock_client(always(200, calls)).get_agents(ids)
    assert list(results) == ["agent_b", "agent_a"] and len(calls) == 2
    assert await mock_client(always(200, calls)).get_agents([]) == {}


async def test_api_key_sent_but_never_logged(mock_client: Any,
                                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    statuses = iter([503, 429, 200, 404])

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["xi-api-key"])
        status = next(statuses)
        return httpx.Response(status, json=agent_body() if status == 200 else {"detail": {}})

    client = mock_client(handler, FakeTime())
    await client.get_agent(AGENT)
    with pytest.raises(AgentNotFound) as info:
        await client.get_agent(AGENT)
    assert seen == [KEY] * 4
    assert caplog.records, "expected attempt logs"
    assert KEY not in caplog.text
    assert KEY not in str(info.value) and KEY not in repr(client.settings)
