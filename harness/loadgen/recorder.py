"""What each Locust process records, and how it travels to the master (pure).

No Locust, no gevent, no I/O here, so all of it is unit-testable in a plain
process (importing Locust monkey-patches the interpreter with gevent).
`harness/loadgen/plugin.py` wires it to Locust's events; the master merges with
`harness/loadgen/aggregate.py`.

Every Locust process that runs users (the local runner, or each worker) owns
a :class:`Recorder`. Each request goes into the *one-second window of its start
time*, per endpoint (``"METHOD /route/{template}"``): a count, failures by kind,
an HDR histogram of the raw latency and one of the latency corrected for
coordinated omission (µs), bytes, ``X-Cache`` values, degraded/partial flags and
unexpected statuses, the requests sent with a sampled `traceparent`
(`harness.loadgen.traces`), and per failure kind up to `ERROR_SAMPLES` distinct
messages, scrubbed of secrets where they are made (`harness.loadgen.samples`).
Paced users also record intended and achieved task
starts, WriterUser its freshness lag and the id of every call acknowledged;
each process its CPU samples and Locust's CPU warnings. The recorder only
holds what has not been sent yet: :meth:`Recorder.take_delta` hands it over
as a `harness.model.client.Delta` and starts afresh, so a worker's memory
stays flat however long the run.

The scenarios' response checks raise the :class:`CheckFailure` subclasses below
(`resp.failure(TenantLeak(...))`); :func:`classify_failure` turns any request
exception into the failure kind recorded.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Iterable

from harness import hdr
from harness.loadgen import samples as sm
from harness.loadgen.traces import WindowTraces
from harness.model.client import Delta, DeltaCell, DeltaWindow, TraceSample
from harness.model.endpoint import endpoint_key
from harness.model.result import ERROR_SAMPLES

# ---- failures raised by the scenarios' response checks -------------------------------

class CheckFailure(Exception):
    """A response that arrived but is wrong; `kind` names the failure in the results."""

    kind = "check_failed"


class UnexpectedStatus(CheckFailure):
    """A status outside the endpoint's expected set (kind `http_<status>` for errors)."""

    def __init__(self, status: int, expected: Iterable[int], endpoint: str = "") -> None:
        self.status = int(status)
        self.expected = tuple(expected)
        self.kind = f"http_{self.status}" if self.status >= 400 else "unexpected_status"
        super().__init__(f"{endpoint}: status {self.status}, expected one of {self.expected}")


class TenantLeak(CheckFailure):
    """The body belongs to another user: the worst failure there is."""

    kind = "tenant_leak"

    def __init__(self, endpoint: str, expected_user: int, got_user: object) -> None:
        self.expected_user = expected_user
        self.got_user = got_user
        super().__init__(f"TENANT LEAK on {endpoint}: user {expected_user} received the data "
                         f"of user {got_user!r}")


class InvalidBody(CheckFailure):
    kind = "invalid_body"


class ConnectionFailure(CheckFailure):
    kind = "connection"


class TimeoutFailure(CheckFailure):
    kind = "timeout"


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def classify_failure(exc: BaseException | None, status: int | None = None) -> str | None:
    """The failure kind of a request event's exception (None for a success)."""
    if exc is None:
        return None
    kind = getattr(exc, "kind", None)
    if isinstance(kind, str) and kind:
        return kind
    name = type(exc).__name__
    if isinstance(exc, TimeoutError) or "timeout" in name.lower():
        return "timeout"
    code = getattr(exc, "code", None)
    if isinstance(code, int) and code >= 100:
        return f"http_{code}"
    if status and status >= 400:
        return f"http_{status}"
    if isinstance(exc, (ConnectionError, OSError)) or status == 0:
        return "connection"
    return _snake(name)


# ---- per-process recording ----------------------------------------------------------

SAMPLE_TRIES = 10
"""Failures of one kind in one cell described at most (then its samples are what they are)."""


class _Cell:
    """One endpoint in one window of one process, before it is sent."""

    __slots__ = (
        "bytes",
        "corrected",
        "count",
        "degraded",
        "failures",
        "partial",
        "raw",
        "sample_tries",
        "samples",
        "traced",
        "unexpected",
        "x_cache",
    )

    def __init__(self) -> None:
        self.count = 0
        self.failures: Counter[str] = Counter()
        self.raw = hdr.new_histogram()
        self.corrected = hdr.new_histogram()
        self.bytes = 0
        self.x_cache: Counter[str] = Counter()
        self.degraded = 0
        self.partial = 0
        self.unexpected: Counter[str] = Counter()
        self.traced = 0
        self.samples: dict[str, list[str]] | None = None  # kind -> messages, once one fails
        self.sample_tries: Counter[str] | None = None

    def wire(self) -> DeltaCell:
        extra = {"error_samples": self.samples} if self.samples else {}
        return DeltaCell(count=self.count, failures=dict(self.failures),
                         histogram=hdr.encode(self.raw),
                         corrected_histogram=hdr.encode(self.corrected), bytes=self.bytes,
                         x_cache=dict(self.x_cache), degraded=self.degraded,
                         partial=self.partial, unexpected=dict(self.unexpected),
                         traced=self.traced, **extra)

    def sample(self, kind: str, describe: Callable[[], str], scrub: sm.Scrubber) -> None:
        """Keep what this failure said, unless the cell holds `ERROR_SAMPLES` of its kind.

        The message is only made (body parsed, secrets scrubbed, then clipped: a key cut
        in half would no longer match) while there is room, and for at most
        `SAMPLE_TRIES` failures of a kind in the cell: a burst of identical failures
        costs a few descriptions a second and no memory."""
        if self.samples is None:
            self.samples, self.sample_tries = {}, Counter()
        held = self.samples.setdefault(kind, [])
        if len(held) >= ERROR_SAMPLES or self.sample_tries[kind] >= SAMPLE_TRIES:
            return
        self.sample_tries[kind] += 1
        try:
            text = describe()
        except Exception as exc:  # noqa: BLE001 - a message we cannot make must not lose the count
            text = f"(no message: {type(exc).__name__})"
        sm.add_distinct(held, sm.clip(scrub(text)))


class _Window:
    __slots__ = (
        "endpoints",
        "freshness",
        "freshness_timeouts",
        "tasks_intended",
        "tasks_started",
        "traces",
    )

    def __init__(self) -> None:
        self.endpoints: dict[str, _Cell] = {}
        self.tasks_intended = 0
        self.tasks_started = 0
        self.freshness: object | None = None  # an HdrHistogram once a sample arrives
        self.freshness_timeouts = 0
        self.traces: WindowTraces | None = None  # once a sampled request arrives

    def wire(self, t: int) -> DeltaWindow:
        return DeltaWindow(
            t=t, endpoints={k: c.wire() for k, c in self.endpoints.items()},
            tasks_intended=self.tasks_intended, tasks_started=self.tasks_started,
            freshness=hdr.encode(self.freshness) if self.freshness is not None else None,
            freshness_timeouts=self.freshness_timeouts,
            traces=self.traces.wire() if self.traces is not None else [])


class Recorder:
    """Everything one Locust process observed since its last delta."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.enabled = False
        self.final_sent = False
        self.seq = 0
        self.total_requests = 0
        self.scrub = sm.Scrubber()
        """What every error sample goes through (`set_secrets`: the dataset's keys too)."""
        self._reset()

    def set_secrets(self, secrets: Iterable[str]) -> None:
        """The keys this process's users send (the dataset manifest's): never in a sample."""
        self.scrub = sm.Scrubber(secrets)

    def _reset(self) -> None:
        self._windows: dict[int, _Window] = {}
        self._cpu: list[list[float]] = []
        self._cpu_warnings = 0
        self._requests = 0
        self._acknowledged: list[int] = []

    def restart(self) -> None:
        """Forget everything (a new test starts)."""
        self._reset()
        self.final_sent = False
        self.seq = 0
        self.total_requests = 0

    def _window(self, t: float) -> _Window:
        key = int(t)
        w = self._windows.get(key)
        if w is None:
            w = self._windows[key] = _Window()
        return w

    def request_event(self, request_type: str, name: str, response_time: float | None,
                      response_length: int | None, response=None, context: dict | None = None,
                      exception: BaseException | None = None,
                      start_time: float | None = None) -> None:
        """One Locust `request` event, as its listener gets it: the failure kind and an
        unexpected status read from the exception and the response, the start time
        (Locust's, or the end minus the latency when it has none), the endpoint key."""
        status = getattr(response, "status_code", None)
        kind = classify_failure(exception, status)
        unexpected = None
        if isinstance(exception, UnexpectedStatus):
            unexpected = exception.status
        elif kind and kind.startswith("http_") and status:
            unexpected = status
        rt = float(response_time or 0.0)
        start = start_time if start_time else time.time() - rt / 1000.0
        key = endpoint_key(request_type, name)
        said = (lambda: sm.describe(exception, response, key)) if kind else None
        self.request(key, start, rt, int(response_length or 0), kind, context, unexpected, said)

    def request(self, key: str, start: float, response_time_ms: float, length: int,
                failure: str | None, context: dict | None = None,
                unexpected_status: int | None = None,
                describe: Callable[[], str] | None = None) -> None:
        """One request: `start` epoch seconds, latency in ms as Locust reports it.

        A request sent with a sampled `traceparent` has `trace_id` and `trace_sampled` in
        its context (`scenarios/common.py`); it becomes a trace candidate of its second.
        A failure's `describe` says what it said (`harness.loadgen.samples.describe`),
        called only when the message is to be kept."""
        window = self._window(start)
        cell = window.endpoints.get(key)
        if cell is None:
            cell = window.endpoints[key] = _Cell()
        raw_us = response_time_ms * 1000.0
        late_us = 0.0
        if context:
            intended = context.get("intended_start")
            task_start = context.get("task_start")
            if intended is not None and task_start is not None:
                late_us = max(0.0, (task_start - intended) * 1e6)
            cache = context.get("x_cache")
            if cache:
                cell.x_cache[str(cache).upper()] += 1
            if context.get("degraded"):
                cell.degraded += 1
            if context.get("partial"):
                cell.partial += 1
            trace_id = context.get("trace_id")
            if trace_id and context.get("trace_sampled"):
                cell.traced += 1
                if window.traces is None:
                    window.traces = WindowTraces()
                window.traces.add(TraceSample(trace_id=trace_id, endpoint=key, t=start,
                                              latency_ms=round(response_time_ms, 3),
                                              failure=failure))
        cell.count += 1
        self._requests += 1
        self.total_requests += 1
        cell.bytes += int(length or 0)
        hdr.record(cell.raw, raw_us)
        hdr.record(cell.corrected, raw_us + late_us)
        if failure:
            cell.failures[failure] += 1
            if describe is not None:
                cell.sample(failure, describe, self.scrub)
        if unexpected_status is not None:
            cell.unexpected[str(unexpected_status)] += 1

    def tasks(self, intended: Iterable[float] = (), started: float | None = None) -> None:
        """Intended task-start slots (epoch seconds) and, optionally, one actual start."""
        for t in intended:
            self._window(t).tasks_intended += 1
        if started is not None:
            self._window(started).tasks_started += 1

    def freshness(self, start: float, lag_s: float | None) -> None:
        """A write's freshness lag (None: it never became visible before the deadline)."""
        w = self._window(start)
        if lag_s is None:
            w.freshness_timeouts += 1
            return
        if w.freshness is None:
            w.freshness = hdr.new_histogram()
        hdr.record(w.freshness, lag_s * 1e6)

    def acknowledged(self, call_id: int) -> None:
        """A write the service acknowledged (201), by the id of the row it stored."""
        self._acknowledged.append(int(call_id))

    def cpu_sample(self, t: float, pct: float) -> None:
        self._cpu.append([t, round(float(pct), 2)])

    def cpu_warning(self) -> None:
        self._cpu_warnings += 1

    @property
    def empty(self) -> bool:
        return (not self._windows and not self._cpu and not self._cpu_warnings
                and not self._acknowledged)

    def take_delta(self, final: bool = False) -> Delta:
        """What was recorded since the last call, and start afresh."""
        self.seq += 1
        delta = Delta(seq=self.seq, final=final, horizon=self.clock(),
                      windows=[w.wire(t) for t, w in sorted(self._windows.items())],
                      cpu=[(t, v) for t, v in self._cpu], cpu_warnings=self._cpu_warnings,
                      requests=self._requests, acknowledged=self._acknowledged)
        self._reset()
        if final:
            self.final_sent = True
        return delta
