"""Retry policy of the ElevenLabs client: what is retried, how long to wait, when to stop.

Kept apart from the transport code so the policy can be read, and tested,
on its own:

* :func:`error_for_status` / :func:`translate_httpx_error` turn an upstream
  answer or an ``httpx`` exception into the client's exception tree. The
  ``retryable`` flag of the result is the *only* input of the retry decision:
  408, 429, 5xx, timeouts and transport errors retry; 401, 403, 404, 422 and
  other 4xx never do.
* :class:`BackoffWait` is a tenacity wait strategy: exponential backoff
  (``base * multiplier ** (n - 1)``: 1 s, 2 s, 4 s by default), replaced by
  the server's ``Retry-After`` on a 429/503 that carries one.
* :class:`StopAtAttemptsOrDeadline` is a tenacity stop strategy: stop after
  the last allowed attempt, or when the next wait would not end before the
  logical request's deadline (waiting for a retry that cannot happen in time
  only wastes the page budget). Tenacity computes the wait before calling
  stop, so the decision sees ``retry_state.upcoming_sleep``.
* :func:`build_retrying` assembles them into an ``AsyncRetrying`` with an
  injectable ``sleep`` (tests run the real schedule without sleeping).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import math
import random
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from target_service.elevenlabs.errors import (
    AgentNotFound,
    AuthenticationFailed,
    ElevenLabsError,
    InvalidRequest,
    RateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
    status_reason,
)
from target_service.elevenlabs.settings import ElevenLabsSettings, backoff_delay

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


def parse_retry_after(value: str | None, *, now: dt.datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP-date).

    Fractional seconds are accepted (the local stub sends them to keep tests
    fast). Unparseable values give ``None``; dates in the past give 0.
    """
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        seconds = (when - (now or dt.datetime.now(dt.UTC))).total_seconds()
    if math.isnan(seconds) or seconds == math.inf:
        return None
    return max(0.0, seconds)


def _detail_code(body: bytes) -> str | None:
    """``detail.code`` (or legacy ``detail.status``) of an ElevenLabs error body."""
    try:
        detail = json.loads(body).get("detail")
    except (ValueError, AttributeError):
        return None
    if isinstance(detail, dict):
        code = detail.get("code") or detail.get("status")
        return str(code) if code else None
    return None


def error_for_status(status: int, headers: httpx.Headers, body: bytes,
                     agent_id: str | None) -> ElevenLabsError | None:
    """The client error for a non-2xx answer (``None`` for 2xx)."""
    if 200 <= status < 300:
        return None
    common: dict[str, Any] = {"agent_id": agent_id, "status_code": status}
    if status in (401, 403):
        return AuthenticationFailed("ElevenLabs rejected the API key", **common)
    if status == 404:
        return AgentNotFound("agent not found upstream", **common)
    if status == 408:
        return UpstreamTimeout("upstream request timeout", reason="http_408", **common)
    if status == 429:
        code = _detail_code(body)
        return RateLimited(f"rate limited ({code or 'unknown'})",
                           retry_after=parse_retry_after(headers.get("retry-after")),
                           limit_kind=code, **common)
    if status >= 500:
        return UpstreamUnavailable(f"upstream error {status}", reason=status_reason(status),
                                   retry_after=parse_retry_after(headers.get("retry-after")),
                                   **common)
    return InvalidRequest(f"upstream rejected the request ({status})",
                          reason=status_reason(status), **common)


def translate_httpx_error(exc: httpx.HTTPError, agent_id: str | None) -> ElevenLabsError:
    """Map an ``httpx`` exception to the client's tree (caller raises ``from exc``)."""
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamTimeout(f"attempt timed out ({type(exc).__name__})",
                               agent_id=agent_id, reason="timeout")
    return UpstreamUnavailable(f"transport error ({type(exc).__name__})",
                               agent_id=agent_id, reason="transport")


def is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, ElevenLabsError) and exc.retryable


class BackoffWait(wait_base):
    """Exponential backoff, or the server's ``Retry-After`` when it sent one."""

    def __init__(self, settings: ElevenLabsSettings,
                 rand: Callable[[], float] = random.random) -> None:
        self.settings = settings
        self._rand = rand

    def __call__(self, retry_state: RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        retry_after = exc.retry_after if isinstance(exc, ElevenLabsError) else None
        if self.settings.honour_retry_after and retry_after is not None:
            return float(retry_after)
        delay = backoff_delay(self.settings, retry_state.attempt_number)
        if self.settings.retry_jitter_s:
            delay += self._rand() * self.settings.retry_jitter_s
        return delay


class StopAtAttemptsOrDeadline(stop_base):
    """Stop after ``max_attempts``, or when the next wait would reach the deadline."""

    def __init__(self, max_attempts: int, deadline_at: float, clock: Clock) -> None:
        self.max_attempts = max_attempts
        self.deadline_at = deadline_at
        self._clock = clock

    def __call__(self, retry_state: RetryCallState) -> bool:
        if retry_state.attempt_number >= self.max_attempts:
            return True
        return retry_state.upcoming_sleep >= self.deadline_at - self._clock()


def build_retrying(settings: ElevenLabsSettings, *, deadline_at: float, clock: Clock,
                   sleep: Sleep,
                   before_sleep: Callable[[RetryCallState], Any] | None = None,
                   ) -> AsyncRetrying:
    """The tenacity controller for one logical request."""
    return AsyncRetrying(
        stop=StopAtAttemptsOrDeadline(settings.max_attempts, deadline_at, clock),
        wait=BackoffWait(settings),
        retry=retry_if_exception(is_retryable),
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
