"""The ElevenLabs Conversational AI client: retries, deadlines, parallel fetch, breaker.

Lifespan wiring (the service owns the one shared ``httpx.AsyncClient``)::

    http = build_http_client(settings.elevenlabs)            # startup
    client = ElevenLabsClient(settings.elevenlabs, http,
                              metrics=ElevenLabsMetrics(registry))
    ...
    await http.aclose()                                       # shutdown

    config = await client.get_agent("agent_...")              # AgentConfig or raises
    results = await client.get_agents(ids, budget_s=2.0)      # never raises
    client.breaker_state                                      # closed|open|half_open

What one logical request (one agent) does:

1. If the circuit breaker is open, fail at once with :class:`CircuitOpen`.
2. Wait for a slot of the client-wide concurrency limit
   (``max_concurrency``, kept at or below the upstream plan's limit); the
   slot is held only during an HTTP attempt, never during a backoff sleep.
3. Send one attempt under ``attempt_timeout_s`` (and httpx's connect/read
   timeouts); read and close the response whatever happens.
4. On a retryable failure (408, 429, 5xx, timeout, transport) wait 1 s, 2 s,
   4 s (or ``Retry-After``) and try again, at most ``max_retries`` times, and
   never past the request deadline, which wraps the whole loop.

:meth:`ElevenLabsClient.get_agents` runs one such request per agent, all at
once in a ``TaskGroup`` (or one after another when ``parallel`` is off),
each bounded by ``min(request_deadline_s, page budget left)``: a slow or
failing agent costs the page at most its budget, and the others are not
affected. Failures come back as :class:`FetchResult` values, so the caller
decides how to degrade (cache, stored snapshot, "unavailable").

Each failed attempt is logged on ``target_service.elevenlabs`` with agent id,
attempt number, reason and elapsed time. The API key lives only in the
``xi-api-key`` default header of the httpx client and is never logged.

With a ``tracer`` (the ``tracer`` attribute; None: untraced) one logical request
is an ``elevenlabs.get_agent`` span, each HTTP attempt an ``elevenlabs.attempt``
span (``elevenlabs.attempt`` number, ``elevenlabs.retry_reason`` of the attempt
before it, ``elevenlabs.failure_reason``) around the instrumented httpx span,
and a call the breaker refuses an ``elevenlabs.breaker.reject`` span.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Self
from urllib.parse import quote

import httpx
from opentelemetry.trace import Span, StatusCode, Tracer
from pydantic import ValidationError

from target_service.elevenlabs.breaker import BreakerState, CircuitBreaker
from target_service.elevenlabs.errors import (
    AgentNotFound,
    CircuitOpen,
    ElevenLabsError,
    InvalidResponse,
    RateLimited,
    UpstreamTimeout,
)
from target_service.elevenlabs.metrics import ElevenLabsMetrics
from target_service.elevenlabs.models import AgentConfig, FetchResult
from target_service.elevenlabs.retry import (
    Clock,
    Sleep,
    build_retrying,
    error_for_status,
    translate_httpx_error,
)
from target_service.elevenlabs.settings import ElevenLabsSettings
from target_service.tracing import activate

log = logging.getLogger("target_service.elevenlabs")

USER_AGENT = "dashboard-target-service/0.1 (+httpx)"


def build_http_client(settings: ElevenLabsSettings, *,
                      transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    """The shared upstream ``AsyncClient``: base URL, auth header, pool limits, timeouts.

    ``transport`` is for tests (``httpx.MockTransport``). The caller closes it.
    """
    timeout = httpx.Timeout(connect=settings.connect_timeout_s, read=settings.read_timeout_s,
                            write=settings.read_timeout_s, pool=settings.attempt_timeout_s)
    limits = httpx.Limits(max_connections=settings.max_connections,
                          max_keepalive_connections=settings.max_keepalive_connections,
                          keepalive_expiry=settings.keepalive_expiry_s)
    return httpx.AsyncClient(
        base_url=settings.base_url, timeout=timeout, limits=limits, transport=transport,
        follow_redirects=False,
        headers={"xi-api-key": settings.api_key.get_secret_value(),
                 "accept": "application/json", "user-agent": USER_AGENT})


@dataclass(slots=True)
class _Call:
    """Book-keeping of one logical request across its attempts."""

    agent_id: str
    started: float
    attempts: int = 0
    last_reason: str = "none"


class ElevenLabsClient:
    """Fetch agent configurations from ElevenLabs, resiliently."""

    def __init__(self, settings: ElevenLabsSettings, http: httpx.AsyncClient | None = None, *,
                 metrics: ElevenLabsMetrics | None = None,
                 breaker: CircuitBreaker | None = None,
                 sleep: Sleep | None = None, clock: Clock = time.monotonic,
                 tracer: Tracer | None = None) -> None:
        self.settings = settings
        self.tracer = tracer
        self._owns_http = http is None
        self._http = http if http is not None else build_http_client(settings)
        self.metrics = metrics if metrics is not None else ElevenLabsMetrics.private()
        self._clock = clock
        self._sleep: Callable[[float], Awaitable[None]] = sleep or asyncio.sleep
        if breaker is None and settings.circuit_breaker:
            breaker = CircuitBreaker(settings.breaker_failure_threshold,
                                     settings.breaker_cooldown_s, clock=clock)
        self.breaker = breaker
        if breaker is not None:
            breaker.add_listener(self._on_breaker_change)
        self._slots = asyncio.Semaphore(settings.max_concurrency)

    # -- lifecycle ----------------------------------------------------------
    async def aclose(self) -> None:
        """Close the httpx client if this object created it."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @property
    def breaker_state(self) -> BreakerState:
        return self.breaker.state if self.breaker is not None else BreakerState.CLOSED

    def _on_breaker_change(self, state: BreakerState) -> None:
        self.metrics.set_breaker_state(state.value)
        level = logging.WARNING if state is BreakerState.OPEN else logging.INFO
        log.log(level, "ElevenLabs circuit breaker %s", state.value,
                extra={"breaker_state": state.value})

    # -- public API ---------------------------------------------------------
    async def get_agent(self, agent_id: str, *, deadline_s: float | None = None) -> AgentConfig:
        """One agent's configuration, with retries within ``deadline_s``.

        Raises an :class:`ElevenLabsError` subclass; ``.attempts`` tells how
        many HTTP attempts were made.
        """
        budget = self.settings.request_deadline_s if deadline_s is None else deadline_s
        config, _ = await self._fetch(agent_id, self._clock() + budget)
        return config

    async def get_agents(self, agent_ids: Iterable[str], *,
                         budget_s: float | None = None) -> dict[str, FetchResult]:
        """Every agent's configuration within one page budget. Never raises
        :class:`ElevenLabsError`; the result keeps the (deduplicated) input order."""
        ids = list(dict.fromkeys(agent_ids))
        budget = self.settings.page_budget_s if budget_s is None else budget_s
        page_deadline = self._clock() + budget
        if self.settings.parallel and len(ids) > 1:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(self._fetch_result(i, page_deadline)) for i in ids]
            results = [t.result() for t in tasks]
        else:
            results = [await self._fetch_result(i, page_deadline) for i in ids]
        return {r.agent_id: r for r in results}

    # -- internals ----------------------------------------------------------
    async def _fetch_result(self, agent_id: str, page_deadline: float) -> FetchResult:
        started = self._clock()
        deadline = min(page_deadline, started + self.settings.request_deadline_s)
        try:
            config, attempts = await self._fetch(agent_id, deadline)
        except ElevenLabsError as err:
            return FetchResult.failure(agent_id, err, elapsed_s=self._clock() - started)
        except Exception as exc:  # a bug must degrade one agent, not the page
            log.exception("unexpected error fetching ElevenLabs agent %s", agent_id)
            err = ElevenLabsError(f"internal error: {type(exc).__name__}", agent_id=agent_id,
                                  reason="internal")
            self._record_failure(err)
            return FetchResult.failure(agent_id, err, elapsed_s=self._clock() - started)
        return FetchResult.success(agent_id, config, attempts=attempts,
                                   elapsed_s=self._clock() - started)

    async def _fetch(self, agent_id: str, deadline_at: float) -> tuple[AgentConfig, int]:
        """(config, attempts) or a raised ElevenLabsError; records the request metrics."""
        if self.tracer is None:
            return await self._request(agent_id, deadline_at)
        with self.tracer.start_as_current_span(
                "elevenlabs.get_agent", attributes={"elevenlabs.agent_id": agent_id}) as span:
            try:
                config, attempts = await self._request(agent_id, deadline_at)
            except ElevenLabsError as err:
                span.set_attributes({"elevenlabs.attempts": err.attempts,
                                     "elevenlabs.failure_reason": err.reason})
                raise
            span.set_attribute("elevenlabs.attempts", attempts)
            return config, attempts

    async def _request(self, agent_id: str, deadline_at: float) -> tuple[AgentConfig, int]:
        call = _Call(agent_id=agent_id, started=self._clock())
        remaining = deadline_at - call.started
        if remaining <= 0:
            err = UpstreamTimeout("page budget exhausted before the request started",
                                  agent_id=agent_id, reason="budget")
            self._record_failure(err)
            raise err
        retrying = build_retrying(self.settings, deadline_at=deadline_at, clock=self._clock,
                                  sleep=self._sleep)
        try:
            async with asyncio.timeout(remaining):
                config: AgentConfig = await retrying(self._attempt, call, deadline_at)
        except TimeoutError as exc:  # the deadline fired during an attempt or a sleep
            self.metrics.timeouts.labels(kind="deadline").inc()
            err = UpstreamTimeout("request deadline exceeded", agent_id=agent_id,
                                  reason="deadline", attempts=call.attempts)
            self._log_give_up(call, err)
            self._record_failure(err)
            raise err from exc
        except ElevenLabsError as err:
            err.attempts = call.attempts
            err.agent_id = agent_id
            self._log_give_up(call, err)
            self._record_failure(err)
            raise
        self.metrics.requests.labels(result="success").inc()
        return config, call.attempts

    def _record_failure(self, err: ElevenLabsError) -> None:
        self.metrics.requests.labels(result="failure").inc()
        self.metrics.failures.labels(reason=err.reason).inc()

    def _log_give_up(self, call: _Call, err: ElevenLabsError) -> None:
        if err.reason in ("not_found", "circuit_open"):
            return  # expected answers, already visible in metrics
        log.warning("ElevenLabs request failed: agent_id=%s attempts=%d reason=%s "
                    "elapsed=%.3fs", call.agent_id, call.attempts, err.reason,
                    self._clock() - call.started,
                    extra={"agent_id": call.agent_id, "attempts": call.attempts,
                           "reason": err.reason})

    async def _attempt(self, call: _Call, deadline_at: float) -> AgentConfig:
        """One HTTP attempt; raises a classified error (retryable or not)."""
        breaker = self.breaker
        if breaker is not None and not breaker.try_acquire():
            if self.tracer is not None:
                self.tracer.start_span("elevenlabs.breaker.reject", attributes={
                    "elevenlabs.agent_id": call.agent_id,
                    "elevenlabs.breaker.state": breaker.state.value,
                    "elevenlabs.breaker.retry_in_s": breaker.retry_in()}).end()
            raise CircuitOpen("circuit breaker open, upstream not called",
                              agent_id=call.agent_id, retry_in=breaker.retry_in())
        verdict = "release"  # cancelled before a verdict: just free a half-open probe slot
        span: Span | None = None
        try:
            async with self._slots:
                call.attempts += 1
                self.metrics.attempts.inc()
                if call.attempts > 1:
                    self.metrics.retries.labels(reason=call.last_reason).inc()
                if self.tracer is not None:
                    span = self._attempt_span(self.tracer, call)
                with activate(span):  # the httpx span nests under the attempt
                    status, headers, body = await self._send(call, deadline_at)
            error = error_for_status(status, headers, body, call.agent_id)
            if error is not None:
                raise error
            config = self._parse(call, body)
            verdict = "success"
            if span is not None:
                span.set_attribute("elevenlabs.outcome", "success")
            return config
        except ElevenLabsError as err:
            verdict = _breaker_verdict(err)
            if span is not None:
                span.set_attributes({"elevenlabs.outcome": "failure",
                                     "elevenlabs.failure_reason": err.reason})
                span.set_status(StatusCode.ERROR, err.reason)
            call.last_reason = err.reason
            elapsed = self._clock() - call.started
            # A 404 is an expected answer (agent deleted upstream), not an incident.
            level = logging.INFO if isinstance(err, AgentNotFound) else logging.WARNING
            log.log(level, "ElevenLabs attempt failed: agent_id=%s attempt=%d reason=%s "
                    "status=%s elapsed=%.3fs", call.agent_id, call.attempts, err.reason,
                    err.status_code, elapsed,
                    extra={"agent_id": call.agent_id, "attempt": call.attempts,
                           "reason": err.reason, "elapsed_s": round(elapsed, 4)})
            raise
        finally:
            if breaker is not None:
                if verdict == "success":
                    breaker.record_success()
                elif verdict == "failure":
                    breaker.record_failure()
                else:
                    breaker.release()
            if span is not None:
                span.end()

    @staticmethod
    def _attempt_span(tracer: Tracer, call: _Call) -> Span:
        attrs: dict[str, str | int] = {"elevenlabs.agent_id": call.agent_id,
                                       "elevenlabs.attempt": call.attempts}
        if call.attempts > 1:
            attrs["elevenlabs.retry_reason"] = call.last_reason
        return tracer.start_span("elevenlabs.attempt", attributes=attrs)

    async def _send(self, call: _Call, deadline_at: float) -> tuple[int, httpx.Headers, bytes]:
        """GET the agent once; the response is always read and closed here."""
        timeout = max(0.001, min(self.settings.attempt_timeout_s, deadline_at - self._clock()))
        path = f"/v1/convai/agents/{quote(call.agent_id, safe='')}"
        request = self._http.build_request("GET", path)
        started = self._clock()
        outcome = "transport"
        self.metrics.in_flight.inc()
        try:
            try:
                async with asyncio.timeout(timeout):
                    response = await self._http.send(request, stream=True)
                    try:
                        body = await response.aread()
                    finally:
                        await response.aclose()
            except TimeoutError as exc:
                outcome = "timeout"
                self.metrics.timeouts.labels(kind="attempt").inc()
                raise UpstreamTimeout(f"attempt exceeded {timeout:.3f}s",
                                      agent_id=call.agent_id, reason="timeout") from exc
            except httpx.HTTPError as exc:
                err = translate_httpx_error(exc, call.agent_id)
                if isinstance(err, UpstreamTimeout):
                    outcome = "timeout"
                    self.metrics.timeouts.labels(kind="attempt").inc()
                raise err from exc
            outcome = _outcome(response.status_code)
            return response.status_code, response.headers, body
        finally:
            self.metrics.in_flight.dec()
            self.metrics.request_duration.labels(outcome=outcome).observe(
                self._clock() - started)

    def _parse(self, call: _Call, body: bytes) -> AgentConfig:
        try:
            return AgentConfig.model_validate(json.loads(body))
        except (ValueError, ValidationError) as exc:
            raise InvalidResponse("agent body is not a valid configuration",
                                  agent_id=call.agent_id, status_code=200) from exc


def _breaker_verdict(err: ElevenLabsError) -> str:
    """5xx/408/timeouts/transport count against the upstream; 429 is neutral;
    any other answer (401, 404, 422, a bad body) proves it is alive."""
    if isinstance(err, RateLimited):
        return "release"
    return "failure" if err.retryable else "success"


def _outcome(status: int) -> str:
    if status < 400:
        return "success"
    if status == 429:
        return "rate_limited"
    if status >= 500 or status == 408:
        return "server_error"
    return "client_error"
