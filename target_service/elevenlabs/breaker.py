"""A small circuit breaker for the ElevenLabs client.

Why: when the upstream is down, every page request would otherwise spend its
whole budget on timeouts and retries (and add load to a struggling service).
After ``failure_threshold`` consecutive failed attempts the breaker *opens*:
calls fail at once with :class:`CircuitOpen` and the service serves its
fallbacks immediately. After ``cooldown_s`` it becomes *half-open* and lets
exactly one probe through; a success closes it, a failure re-opens it for
another cool-down. It recovers on its own, no operator needed.

::

    closed --N consecutive failures--> open --cooldown--> half_open
       ^                                 ^                   |
       +------------- probe succeeds ----+--- probe fails ---+

What counts: 5xx, timeouts and transport errors are failures; any other
answer (2xx, 401, 404, 422) proves the upstream is alive and is a success;
429 is neutral (the upstream is healthy but pushing back, which Retry-After
handles). The breaker is plain synchronous state touched only from the event
loop thread, so it needs no lock; the OPEN -> HALF_OPEN move happens lazily
when someone asks.

Usage (the client does this around every attempt)::

    if not breaker.try_acquire():
        raise CircuitOpen(..., retry_in=breaker.retry_in())
    try:
        ...  # the attempt
        breaker.record_success()      # or record_failure() / release()
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class BreakerSnapshot:
    """For health endpoints and logs."""

    state: BreakerState
    consecutive_failures: int
    failure_threshold: int
    cooldown_s: float
    retry_in_s: float
    opened_count: int


class CircuitBreaker:
    """closed -> open -> half-open -> closed, with one probe in half-open."""

    def __init__(self, failure_threshold: int = 5, cooldown_s: float = 5.0, *,
                 clock: Callable[[], float] = time.monotonic,
                 on_state_change: Callable[[BreakerState], None] | None = None) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be >= 1")
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._listeners: list[Callable[[BreakerState], None]] = []
        if on_state_change is not None:
            self._listeners.append(on_state_change)
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probe_in_flight = False
        self.opened_count = 0

    @property
    def state(self) -> BreakerState:
        """Current state; an open breaker whose cool-down ended reads half-open."""
        if self._state is BreakerState.OPEN and self._cooldown_over():
            self._transition(BreakerState.HALF_OPEN)
        return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def _cooldown_over(self) -> bool:
        return self._clock() - self._opened_at >= self.cooldown_s

    def retry_in(self) -> float:
        """Seconds until an open breaker lets a probe through (0 if not open)."""
        if self.state is not BreakerState.OPEN:
            return 0.0
        return max(0.0, self.cooldown_s - (self._clock() - self._opened_at))

    def add_listener(self, callback: Callable[[BreakerState], None]) -> None:
        """Call ``callback(new_state)`` on every transition (metrics, logs)."""
        self._listeners.append(callback)

    def try_acquire(self) -> bool:
        """May a call go upstream now? In half-open only one probe at a time."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not self._probe_in_flight:
            self._probe_in_flight = True
            return True
        return False

    def record_success(self) -> None:
        self._probe_in_flight = False
        self._failures = 0
        if self._state is not BreakerState.CLOSED:
            self._transition(BreakerState.CLOSED)

    def record_failure(self) -> None:
        self._probe_in_flight = False
        self._failures += 1
        if self._state is BreakerState.HALF_OPEN or (
                self._state is BreakerState.CLOSED
                and self._failures >= self.failure_threshold):
            self._open()

    def release(self) -> None:
        """The call ended without a verdict (429, cancelled): free the probe slot."""
        self._probe_in_flight = False

    def reset(self) -> None:
        """Force closed (admin action, tests)."""
        self._probe_in_flight = False
        self._failures = 0
        if self._state is not BreakerState.CLOSED:
            self._transition(BreakerState.CLOSED)

    def snapshot(self) -> BreakerSnapshot:
        return BreakerSnapshot(state=self.state, consecutive_failures=self._failures,
                               failure_threshold=self.failure_threshold,
                               cooldown_s=self.cooldown_s, retry_in_s=self.retry_in(),
                               opened_count=self.opened_count)

    def _open(self) -> None:
        self._opened_at = self._clock()
        self.opened_count += 1
        self._transition(BreakerState.OPEN)

    def _transition(self, new: BreakerState) -> None:
        if new is self._state:
            return
        self._state = new
        for callback in self._listeners:
            callback(new)
