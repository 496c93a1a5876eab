"""Client-made W3C trace context, and the sampled requests the plugin keeps (pure).

No Locust, no gevent, no I/O: the scenarios and the plugin use these, the unit
tests drive them directly.

* :class:`TraceparentSource` makes one `traceparent` per request
  (`00-<32 hex trace id>-<16 hex span id>-<flags>`, W3C Trace Context level 1):
  random non-zero ids, flags `01` (sampled) with probability `sampling`, else
  `00`. The service's sampler is `ParentBased`, so the flag decides whether the
  request's spans are recorded, and the trace id is the one the client
  recorded. No OpenTelemetry provider is involved (none is global anywhere).
* :class:`WindowTraces` is what one Locust process keeps of the sampled
  requests that started in one second, until its next delta: per endpoint the
  `slowest_n` slowest, and the `reservoir_size` with the lowest *rank* (the
  trace id's right-most 52 bits, which W3C asks to be random) for the
  reservoir. They travel in `DeltaWindow.traces`.
* :class:`TraceSelection` is the master's merge over the measured windows: per
  endpoint the slowest N, and a uniform random sample of fixed size (bottom-k
  by rank: the k lowest ranks of a union are the k lowest of the parts' k
  lowest, so the merge is exact in any order and needs no shared random
  state, like Algorithm R but mergeable across workers and deltas).

Keeping candidates per second (not per delta) is what makes the selection
exact at the edges of the measured window: the master decides the phase of
every second, as it does for the latency histograms.
"""

from __future__ import annotations

import heapq
import random
import secrets
import time
from collections.abc import Callable, Iterable

from harness.model.client import ClientTraces, TraceSample
from harness.model.overhead import arm_of

SLOWEST_N = 5
"""Slowest sampled requests kept per endpoint."""
RESERVOIR_SIZE = 50
"""Sampled requests kept as a uniform sample of the measured window (all endpoints)."""
_RANK_BITS = 52


def traceparent(trace_id: int, span_id: int, sampled: bool) -> str:
    """The W3C `traceparent` header value (version 00)."""
    if not 0 < trace_id < 1 << 128 or not 0 < span_id < 1 << 64:
        raise ValueError("trace id and span id must be non-zero and fit 16 and 8 bytes")
    return f"00-{trace_id:032x}-{span_id:016x}-{'01' if sampled else '00'}"


def rank(trace_id: str) -> float:
    """A uniform value in [0, 1) from a trace id's random right-most 52 bits."""
    return int(trace_id[-_RANK_BITS // 4:], 16) / float(1 << _RANK_BITS)


class TraceparentSource:
    """Trace contexts for one Locust process's requests.

    `rng` and `clock` are for tests; by default the ids come from a generator seeded
    by the OS, so two runs never share trace ids whatever `--harness-seed` says.
    With `interleave_s` the source samples at `sampling` only in the `on` blocks of
    `harness.model.overhead.arm_of` and at 0 in the others (`--trace-interleave`)."""

    def __init__(self, sampling: float, rng: random.Random | None = None,
                 interleave_s: int | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        if not 0.0 <= sampling <= 1.0:
            raise ValueError(f"sampling must be within 0..1, not {sampling}")
        if interleave_s is not None and interleave_s < 2:
            raise ValueError(f"interleave blocks must be 2 s or longer, not {interleave_s}")
        self.sampling = float(sampling)
        self.interleave_s = interleave_s
        self._clock = clock
        self._rng = rng or random.Random(secrets.randbits(128))

    def probability(self) -> float:
        """The sampling probability of a request starting now."""
        if self.interleave_s is None or arm_of(self._clock(), self.interleave_s) == "on":
            return self.sampling
        return 0.0

    def next(self) -> tuple[str, str, bool]:
        """`(header value, trace id as 32 hex digits, sampled)` of a new trace."""
        rng = self._rng
        trace_id = rng.getrandbits(128) or 1
        span_id = rng.getrandbits(64) or 1
        # 1.0 always samples and 0.0 never does: random() is in [0, 1)
        sampled = rng.random() < self.probability()
        return traceparent(trace_id, span_id, sampled), f"{trace_id:032x}", sampled


def parse_sampling(value: object) -> float | None:
    """The `--harness-trace-sampling` option: a probability, or None (off, or unusable)."""
    if value in (None, ""):
        return None
    try:
        p = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return p if 0.0 <= p <= 1.0 else None


def parse_interleave(value: object) -> int | None:
    """The `--harness-trace-interleave` option: whole seconds >= 2, or None (off, unusable)."""
    try:
        n = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return n if n >= 2 else None


class _Slowest:
    """The n slowest samples seen (a min-heap on latency)."""

    __slots__ = ("heap", "n")

    def __init__(self, n: int) -> None:
        self.n = n
        self.heap: list[tuple[float, str, TraceSample]] = []

    def add(self, sample: TraceSample) -> None:
        item = (sample.latency_ms, sample.trace_id, sample)
        if len(self.heap) < self.n:
            heapq.heappush(self.heap, item)
        elif item[:2] > self.heap[0][:2]:
            heapq.heapreplace(self.heap, item)

    def items(self) -> list[TraceSample]:
        """Slowest first."""
        return [s for _, _, s in sorted(self.heap, key=lambda i: i[:2], reverse=True)]


class _Reservoir:
    """The k samples of lowest rank (a max-heap on rank, as negatives)."""

    __slots__ = ("heap", "k")

    def __init__(self, k: int) -> None:
        self.k = k
        self.heap: list[tuple[float, str, TraceSample]] = []

    def add(self, sample: TraceSample) -> None:
        item = (-rank(sample.trace_id), sample.trace_id, sample)
        if len(self.heap) < self.k:
            heapq.heappush(self.heap, item)
        elif item[:2] > self.heap[0][:2]:
            heapq.heapreplace(self.heap, item)

    def items(self) -> list[TraceSample]:
        """In start order."""
        return sorted((s for _, _, s in self.heap), key=lambda s: (s.t, s.trace_id))


class WindowTraces:
    """One process's candidates among the sampled requests of one second."""

    __slots__ = ("_reservoir", "_slowest", "slowest_n")

    def __init__(self, slowest_n: int = SLOWEST_N, reservoir: int = RESERVOIR_SIZE) -> None:
        self.slowest_n = slowest_n
        self._slowest: dict[str, _Slowest] = {}
        self._reservoir = _Reservoir(reservoir)

    def add(self, sample: TraceSample) -> None:
        slow = self._slowest.get(sample.endpoint)
        if slow is None:
            slow = self._slowest[sample.endpoint] = _Slowest(self.slowest_n)
        slow.add(sample)
        self._reservoir.add(sample)

    def wire(self) -> list[TraceSample]:
        """Every candidate once (a sample may be both slow and in the reservoir)."""
        seen: dict[str, TraceSample] = {}
        for slow in self._slowest.values():
            for s in slow.items():
                seen[s.trace_id] = s
        for s in self._reservoir.items():
            seen[s.trace_id] = s
        return sorted(seen.values(), key=lambda s: (s.t, s.trace_id))


class TraceSelection:
    """The master's slowest-per-endpoint and reservoir over the measured windows."""

    def __init__(self, sampling: float | None = None, slowest_n: int = SLOWEST_N,
                 reservoir: int = RESERVOIR_SIZE) -> None:
        self.sampling = sampling
        self.slowest_n = slowest_n
        self.reservoir_size = reservoir
        self._slowest: dict[str, _Slowest] = {}
        self._reservoir = _Reservoir(reservoir)

    def merge(self, samples: Iterable[TraceSample]) -> None:
        """Candidates of one measured second (from any process, in any order; each
        process sends a sample once, with the window it started in)."""
        for s in samples:
            slow = self._slowest.get(s.endpoint)
            if slow is None:
                slow = self._slowest[s.endpoint] = _Slowest(self.slowest_n)
            slow.add(s)
            self._reservoir.add(s)

    def doc(self) -> ClientTraces:
        return ClientTraces(sampling=self.sampling, slowest_n=self.slowest_n,
                            reservoir_size=self.reservoir_size,
                            slowest={k: v.items() for k, v in sorted(self._slowest.items())},
                            reservoir=self._reservoir.items())
