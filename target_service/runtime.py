"""Runtime health of one service process: event-loop lag, GC pauses, CPU and memory.

Latency that no endpoint explains usually lives here: a blocked event loop
(CPU-bound work or a synchronous call on the loop), long generation-2 GC
pauses, a worker that grows until it swaps. prometheus-client's own
`ProcessCollector` and `GCCollector` register on its global registry, not on
the service's, and neither works in multiprocess mode (several uvicorn
workers), so the service keeps its own per-process series, built when the
lifespan starts (`Resources.open`) and stopped when it ends:

* `target_event_loop_lag_seconds` (histogram): a background task sleeps a
  fixed interval and observes how late it woke up. Histograms sum over workers.
* `python_gc_pause_seconds{generation}` (histogram): each collection's wall
  time, timed by a `gc.callbacks` hook; its `_count` is the collections counter.
* `process_cpu_seconds_total` (counter): user + system CPU of this process;
  summed over workers in multiprocess mode (the service's CPU, supervisor excluded).
* `process_resident_memory_bytes` (gauge, `liveall`): resident set size; one
  series per worker (`pid` label) in multiprocess mode, since a leak is per process.

The GC hook never touches a metric: it runs inside whatever allocation
triggered the collection, possibly while that thread holds prometheus-client's
(non-reentrant) value lock, and observing there would deadlock. It appends to
a deque; the monitor's task moves the pauses into the histogram every tick.
"""

from __future__ import annotations

import asyncio
import gc
import os
import resource
import sys
import time
from collections import deque
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from target_service.background import cancel_and_wait

LAG_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
               2.5, 5.0)
"""Event-loop lag: timer jitter (sub-ms) to a loop blocked for seconds."""

GC_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
              0.25, 0.5, 1.0)
"""GC pauses: young collections take microseconds, a full one of a big heap 100s of ms."""

GENERATIONS = ("0", "1", "2")

_STATM = Path("/proc/self/statm")
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident_memory_bytes() -> float:
    """This process's resident set size now (Linux), else its peak (`ru_maxrss`)."""
    try:
        return float(int(_STATM.read_text().split()[1]) * _PAGE)
    except (OSError, IndexError, ValueError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return float(peak if sys.platform == "darwin" else peak * 1024)


def freeze_startup_heap() -> int:
    """Collect, then move every surviving object into the permanent generation, which no
    collection scans (`Settings.gc_freeze` says why); returns how many were frozen. Done
    once the lifespan has built its resources, so the frozen set is the process's fixed
    part; `thaw_heap()` on shutdown lets a test process that builds many apps free them."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def thaw_heap() -> None:
    """Undo `freeze_startup_heap()` (the next collections scan those objects again)."""
    gc.unfreeze()


def set_young_threshold(allocations: int) -> tuple[int, int, int]:
    """Collect the youngest generation after `allocations` net container allocations
    instead of the interpreter's 700 (`Settings.gc_young_threshold` says why); the older
    generations' thresholds are kept. Returns the thresholds before, for `gc.set_threshold`
    to restore on shutdown."""
    before = gc.get_threshold()
    gc.set_threshold(allocations, *before[1:])
    return before


class RuntimeMetrics:
    """The runtime families on one registry; build one per registry (in the lifespan)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.loop_lag = Histogram(
            "target_event_loop_lag_seconds",
            "How late the event loop ran a timer due after a fixed sleep (blocked loop).",
            buckets=LAG_BUCKETS, registry=registry,
        )
        self.gc_pause = Histogram(
            "python_gc_pause_seconds",
            "Wall time of each garbage collection, by generation (_count: collections).",
            ["generation"], buckets=GC_BUCKETS, registry=registry,
        )
        self.cpu = Counter(
            "process_cpu_seconds", "User and system CPU time of the service's process(es).",
            registry=registry,
        )
        self.memory = Gauge(
            "process_resident_memory_bytes", "Resident memory of the process (pid label "
            "per worker in multiprocess mode).", registry=registry,
            multiprocess_mode="liveall",
        )
        self.frozen = Gauge(
            "python_gc_frozen_objects", "Objects moved to the permanent generation at "
            "startup (gc.freeze): never rescanned by a collection.", registry=registry,
            multiprocess_mode="liveall",
        )
        for generation in GENERATIONS:  # zeros, not "no data", before the first collection
            self.gc_pause.labels(generation)


class RuntimeMonitor:
    """The background task and GC hook that feed `RuntimeMetrics` for one process.

    Args:
        interval: the lag probe's sleep; also how often GC pauses are flushed.
        sample_every: how often CPU and memory are read (and on every `sample()`,
            which the scrape calls so a single process reports current values).
    """

    def __init__(self, metrics: RuntimeMetrics, *, interval: float = 0.1,
                 sample_every: float = 1.0) -> None:
        self.metrics = metrics
        self.interval = interval
        self.sample_every = sample_every
        self._task: asyncio.Task | None = None
        self._pauses: deque[tuple[int, float]] = deque(maxlen=100_000)
        self._gc_started: float | None = None
        self._cpu_seen = 0.0
        self._last_sample = float("-inf")
        self.ticks = 0

    @property
    def alive(self) -> bool:
        """The lag probe is running."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Hook into the GC and start the probe on the running loop."""
        if self._task is not None:
            raise RuntimeError("the runtime monitor is started once")
        gc.callbacks.append(self._on_gc)
        self.sample()
        self._task = asyncio.get_running_loop().create_task(self._run(),
                                                            name="runtime-monitor")

    async def stop(self) -> None:
        """Stop the probe, unhook the GC, record what is pending. Idempotent."""
        await cancel_and_wait(self._task)
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)
        self.flush_gc()
        self.sample()

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        # no metric, lock or allocation-heavy work here: see the module docstring
        if phase == "start":
            self._gc_started = time.perf_counter()
        elif self._gc_started is not None:
            self._pauses.append((info["generation"], time.perf_counter() - self._gc_started))
            self._gc_started = None

    def flush_gc(self) -> int:
        """Move the pauses recorded by the GC hook into the histogram; how many."""
        moved = 0
        while self._pauses:
            generation, seconds = self._pauses.popleft()
            self.metrics.gc_pause.labels(str(generation)).observe(seconds)
            moved += 1
        return moved

    def sample(self) -> None:
        """Read CPU and resident memory now (cheap: one clock, one small /proc read)."""
        cpu = time.process_time()
        if cpu > self._cpu_seen:
            self.metrics.cpu.inc(cpu - self._cpu_seen)
            self._cpu_seen = cpu
        self.metrics.memory.set(resident_memory_bytes())
        self._last_sample = time.monotonic()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + self.interval
            await asyncio.sleep(self.interval)
            self.metrics.loop_lag.observe(max(0.0, loop.time() - due))
            self.ticks += 1
            self.flush_gc()
            if time.monotonic() - self._last_sample >= self.sample_every:
                self.sample()
