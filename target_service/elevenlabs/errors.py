"""The ElevenLabs client's exception tree.

Callers (the agents service) catch :class:`ElevenLabsError` and fall back to
cached or stored data; they never see an ``httpx`` exception, because the
client translates them at the boundary with ``raise ... from`` (the original
stays in ``__cause__`` for logs and traces).

::

    ElevenLabsError                 reason, agent_id, status_code, attempts,
                                    retry_after
    +-- UpstreamUnavailable         5xx, transport errors (reset, refused)
    |   +-- RateLimited             429 (retry_after, limit_kind)
    +-- UpstreamTimeout             an attempt or the whole deadline timed out
    +-- AgentNotFound               404
    +-- AuthenticationFailed        401 / 403
    +-- InvalidRequest              other 4xx (400, 422, ...)
    +-- InvalidResponse             2xx whose body is not an agent config
    +-- CircuitOpen                 the breaker refused to call upstream

``retryable`` says whether another attempt may succeed; the retry policy
reads it and nothing else. ``reason`` is a short, bounded label value used in
metrics and logs (``http_503``, ``timeout``, ``transport``, ...).
"""

from __future__ import annotations


class ElevenLabsError(Exception):
    """Base of every error the ElevenLabs client raises."""

    retryable: bool = False
    default_reason: str = "error"

    def __init__(self, message: str, *, agent_id: str | None = None,
                 reason: str | None = None, status_code: int | None = None,
                 attempts: int = 0, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.agent_id = agent_id
        self.reason = reason or self.default_reason
        self.status_code = status_code
        self.attempts = attempts
        # Seconds the server asked us to wait (Retry-After), if it said so.
        self.retry_after = retry_after

    def __str__(self) -> str:
        parts = [self.message]
        if self.agent_id:
            parts.append(f"agent_id={self.agent_id}")
        if self.status_code is not None:
            parts.append(f"status={self.status_code}")
        if self.attempts:
            parts.append(f"attempts={self.attempts}")
        return " ".join(parts)


class UpstreamUnavailable(ElevenLabsError):
    """The upstream failed (5xx) or could not be reached; worth retrying."""

    retryable = True
    default_reason = "unavailable"


class RateLimited(UpstreamUnavailable):
    """429: request rate or concurrency limit exceeded."""

    default_reason = "http_429"

    def __init__(self, message: str, *, limit_kind: str | None = None,
                 **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        # "rate_limit_exceeded" or "concurrent_limit_exceeded" (detail.code)
        self.limit_kind = limit_kind


class UpstreamTimeout(ElevenLabsError):
    """An attempt (``reason="timeout"``) or the deadline (``"deadline"``) ran out."""

    retryable = True
    default_reason = "timeout"


class AgentNotFound(ElevenLabsError):
    """404: the agent id is unknown upstream. Retrying cannot help."""

    default_reason = "not_found"


class AuthenticationFailed(ElevenLabsError):
    """401/403: wrong or missing API key. Retrying cannot help."""

    default_reason = "auth"


class InvalidRequest(ElevenLabsError):
    """Any other 4xx (400, 405, 422, ...); 408 is an UpstreamTimeout."""

    default_reason = "invalid_request"


class InvalidResponse(ElevenLabsError):
    """A 2xx whose body could not be parsed as an agent configuration."""

    default_reason = "invalid_response"


class CircuitOpen(ElevenLabsError):
    """The circuit breaker is open: upstream was not called at all."""

    default_reason = "circuit_open"

    def __init__(self, message: str, *, retry_in: float | None = None,
                 **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retry_in = retry_in


def status_reason(status: int) -> str:
    """Bounded metric label for an HTTP status."""
    if status in (408, 429, 500, 502, 503, 504):
        return f"http_{status}"
    if status >= 500:
        return "http_5xx"
    return f"http_{status // 100}xx"
