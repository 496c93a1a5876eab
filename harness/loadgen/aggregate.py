"""The merged view of a test on the Locust master (or the local runner).

Pure (no Locust, no gevent, no I/O). `RunAggregate.merge` adds the deltas of
:class:`harness.loadgen.recorder.Recorder` exactly: counts add, HDR histograms
add bucket by bucket, in any order. Windows are keyed by the second a request
*started*, and the measured window starts on a whole second, so "requests that
started after the warm-up" is exactly "the windows from `measure_from` on";
per-endpoint totals are classified as they are merged. Error samples (each
process's messages per endpoint and failure kind) are kept from the measured
windows, the distinct earliest `ERROR_SAMPLES` per endpoint and kind
(`harness.loadgen.samples.FirstSeen`), for `client.json`. Acknowledged writes
(`Delta.acknowledged`) are kept as one set of ids for the whole run, an id seen
again counted as a duplicate.

Memory stays flat however long the run: a window stays open (its histograms
kept as the encoded pieces that arrived, a few hundred bytes each) only until
every process has reported past it plus a margin for slow requests;
`take_closed` then hands it over, merged, to be streamed to the interval log
and `windows.jsonl`, and forgets it. A piece that arrives for a window already
handed over opens it again and is handed over later: readers add lines of the
same second, so late data is never lost.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from harness import hdr
from harness.loadgen import samples as sm
from harness.loadgen.health import ProcessHealth, generator_health
from harness.loadgen.live import live_status
from harness.loadgen.traces import TraceSelection
from harness.model.client import (
    AcknowledgedWrites,
    Checks,
    ClientDoc,
    ClientEndpoint,
    ClientWindow,
    Delta,
    DeltaWindow,
    Event,
    Freshness,
    LiveStatus,
    Pacing,
    Phase,
    WindowCell,
)

CLOSE_AFTER_S = 35
"""A window is handed over once every process has reported this long past it: longer
than the scenarios' 30 s network timeout, so late pieces (still added exactly) are rare."""


@dataclass
class _Cell:
    """One endpoint in one open window: counts, and histogram pieces not yet merged."""

    count: int = 0
    failures: Counter = field(default_factory=Counter)
    raw: list[str] = field(default_factory=list)
    corrected: list[str] = field(default_factory=list)


@dataclass
class _Window:
    phase: Phase
    """Decided when the window's first piece arrives, so the totals and the window
    always agree on it (only `ramp` and `warmup` are refined when it closes)."""
    endpoints: dict[str, _Cell] = field(default_factory=dict)
    tasks_intended: int = 0
    tasks_started: int = 0
    freshness_visible: int = 0
    freshness_timeouts: int = 0


@dataclass
class ClosedWindow:
    """A window handed over for writing: its record and, per endpoint, merged histograms."""

    record: ClientWindow
    histograms: dict[str, tuple[hdr.HdrHistogram, hdr.HdrHistogram]]
    """endpoint -> (raw, corrected)"""


@dataclass
class _Totals:
    """Per endpoint: the measured windows, and the counts of the others."""

    count: int = 0
    failures: Counter = field(default_factory=Counter)
    raw: hdr.HdrHistogram = field(default_factory=hdr.new_histogram)
    corrected: hdr.HdrHistogram = field(default_factory=hdr.new_histogram)
    bytes: int = 0
    x_cache: Counter = field(default_factory=Counter)
    degraded: int = 0
    partial: int = 0
    warmup_count: int = 0
    warmup_failures: int = 0
    cooldown_count: int = 0
    cooldown_failures: int = 0
    traced: int = 0
    samples: dict[str, sm.FirstSeen] = field(default_factory=dict)
    """Failure kind -> its messages seen first in the measured windows."""


class RunAggregate:
    """The merged view of a test on the master (or the local runner)."""

    def __init__(self, warmup_s: float = 0.0, trace_sampling: float | None = None) -> None:
        self.warmup_s = float(warmup_s)
        self.traces = TraceSelection(trace_sampling) if trace_sampling is not None else None
        """Traced runs: the sampled requests kept from the measured windows."""
        self.started_at: float | None = None
        self.spawn_complete_at: float | None = None
        self.measure_from: float | None = None
        self._boundary: int | None = None
        self.stopping_at: float | None = None
        self.ended_at: float | None = None
        self.windows: dict[int, _Window] = {}
        """Open windows only (see `take_closed`)."""
        self.totals: dict[str, _Totals] = {}
        self.users: dict[int, int] = {}
        self._last_users = 0
        self.processes: dict[str, ProcessHealth] = {}
        self.tenant_leaks = 0
        self.unexpected: dict[str, Counter] = {}
        self.freshness = hdr.new_histogram()
        self.freshness_timeouts = 0
        self.acknowledged: set[int] = set()
        """Every acknowledged write's id, whole run (a few bytes each: kept, not streamed)."""
        self.duplicate_acks = 0
        self.events: list[Event] = []
        self._pace = Counter()  # intended/started tasks and requests of the measured span
        self._next_second: int | None = None  # the first second never handed over

    # -- clock --------------------------------------------------------------------------

    def start(self, t: float) -> None:
        """The first spawn: the measured window begins `warmup_s` later, on a whole second."""
        self.started_at = t
        self._next_second = math.floor(t)
        if self.warmup_s > 0:
            self._boundary = math.ceil(t + self.warmup_s)
            self.measure_from = float(self._boundary)
        else:
            self._boundary = math.floor(t)
            self.measure_from = t
        self.add_event(t, "phase:ramp")
        self.add_event(self.measure_from, "phase:measured")

    def spawn_complete(self, t: float) -> None:
        if self.spawn_complete_at is None:
            self.spawn_complete_at = t
            self.add_event(t, "spawning_complete")

    def stopping(self, t: float) -> None:
        if self.stopping_at is None:
            self.stopping_at = t
            self.add_event(t, "phase:cooldown")

    def cpu_sample(self, key: str, role: str, t: float, value: float, pid: int | None = None,
                   host: str | None = None) -> None:
        """A CPU sample of a process that reports no deltas (the master itself)."""
        self.process(key, role, pid, host).add_cpu(t, value, self.measure_from, self.stopping_at)

    def set_users(self, t: float, n: int) -> None:
        self.users[int(t)] = int(n)

    def add_event(self, t: float, name: str, ok: bool = True, error: str | None = None) -> None:
        self.events.append(Event(t=t, name=name, ok=ok, error=error))

    def phase_of(self, t: int) -> Phase:
        """The phase of the window starting at second `t`."""
        if self.stopping_at is not None and t >= math.ceil(self.stopping_at):
            return "cooldown"
        if self._boundary is not None and t >= self._boundary:
            return "measured"
        if self.spawn_complete_at is None or t < self.spawn_complete_at:
            return "ramp"
        return "warmup"

    def phase(self, now: float) -> str:
        """The phase of the test at `now` (for live progress)."""
        if self.stopping_at is not None:
            return "stopping"
        if self.spawn_complete_at is None or now < self.spawn_complete_at:
            return "ramp"
        if self.measure_from is not None and now >= self.measure_from:
            return "measured"
        return "warmup"

    # -- merging ------------------------------------------------------------------------

    def process(self, key: str, role: str, pid: int | None = None,
                host: str | None = None) -> ProcessHealth:
        p = self.processes.get(key)
        if p is None:
            p = self.processes[key] = ProcessHealth(role=role, id=key, pid=pid, host=host)
        return p

    def merge(self, delta: Delta, source: str, role: str = "worker") -> None:
        """Add one delta of one process (exact; any order)."""
        proc = self.process(source, role, delta.pid, delta.host)
        proc.requests += delta.requests
        for t, v in delta.cpu:
            proc.add_cpu(t, v, self.measure_from, self.stopping_at)
        proc.cpu_warnings += delta.cpu_warnings
        proc.last_horizon = max(proc.last_horizon, delta.horizon)
        if delta.final:
            proc.final = True
        for call_id in delta.acknowledged:
            if call_id in self.acknowledged:
                self.duplicate_acks += 1
            else:
                self.acknowledged.add(call_id)
        for wd in delta.windows:
            self._merge_window(wd)

    def _merge_window(self, wd: DeltaWindow) -> None:
        t = wd.t
        w = self.windows.get(t)
        if w is None:
            w = self.windows[t] = _Window(self.phase_of(t))
        w.tasks_intended += wd.tasks_intended
        w.tasks_started += wd.tasks_started
        phase = w.phase
        if wd.freshness:
            w.freshness_visible += hdr.decode(wd.freshness).get_total_count()
        w.freshness_timeouts += wd.freshness_timeouts
        if phase == "measured":
            if wd.freshness:
                hdr.add_into(self.freshness, hdr.decode(wd.freshness))
            self.freshness_timeouts += wd.freshness_timeouts
            if wd.traces and self.traces is not None:
                self.traces.merge(wd.traces)
        for key, c in wd.endpoints.items():
            cell = w.endpoints.get(key)
            if cell is None:
                cell = w.endpoints[key] = _Cell()
            failures = {k: v for k, v in c.failures.items() if v}
            cell.count += c.count
            cell.failures.update(failures)
            if c.histogram:
                cell.raw.append(c.histogram)
            if c.corrected_histogram:
                cell.corrected.append(c.corrected_histogram)
            self.tenant_leaks += failures.get("tenant_leak", 0)
            if c.unexpected:
                self.unexpected.setdefault(key, Counter()).update(c.unexpected)
            tot = self.totals.get(key)
            if tot is None:
                tot = self.totals[key] = _Totals()
            if phase in ("ramp", "warmup"):
                tot.warmup_count += c.count
                tot.warmup_failures += sum(failures.values())
            elif phase == "cooldown":
                tot.cooldown_count += c.count
                tot.cooldown_failures += sum(failures.values())
            else:
                tot.count += c.count
                tot.failures.update(failures)
                if c.histogram:
                    hdr.add_into(tot.raw, hdr.decode(c.histogram))
                if c.corrected_histogram:
                    hdr.add_into(tot.corrected, hdr.decode(c.corrected_histogram))
                tot.bytes += c.bytes
                tot.x_cache.update(c.x_cache)
                tot.degraded += c.degraded
                tot.partial += c.partial
                tot.traced += c.traced
                for kind, messages in getattr(c, "error_samples", {}).items():
                    tot.samples.setdefault(kind, sm.FirstSeen()).add(t, messages)

    # -- closing windows ----------------------------------------------------------------

    def users_at(self, t: int) -> int:
        """Users at the end of window `t` (the latest sample at or before it)."""
        if t in self.users:
            return self.users[t]
        earlier = [k for k in self.users if k <= t]
        if earlier:
            return self.users[max(earlier)]
        return self._last_users

    def take_closed(self, before: float) -> list[ClosedWindow]:
        """Hand over (and forget) every window that started before `before`.

        Empty seconds from the first spawn on are handed over too (once), so the
        time series has no holes; `before=math.inf` hands over everything."""
        seconds = {t for t in self.windows if t < before}
        if self._next_second is not None:
            upto = self._fill_upto(before)
            seconds.update(range(self._next_second, upto))
            self._next_second = max(self._next_second, upto)
        out = [self._close(t) for t in sorted(seconds)]
        for t in [k for k in self.users if k < before - 1]:
            self._last_users = self.users.pop(t)
        return out

    def _fill_upto(self, before: float) -> int:
        """The first second not to fill with empty windows: `before`; for the final hand-over
        (`before=inf`) the second after the stop or after the last window with data,
        whichever is later, so cool-down seconds without requests are no holes either."""
        if not math.isinf(before):
            return math.ceil(before)
        end_t = self.stopping_at or self.ended_at
        last = max(self.windows, default=None)
        ends = [t for t in (math.floor(end_t) + 1 if end_t is not None else None,
                            last + 1 if last is not None else None) if t is not None]
        return max(ends) if ends else (self._next_second or 0)

    def _close(self, t: int) -> ClosedWindow:
        w = self.windows.pop(t, None) or _Window(self.phase_of(t))
        phase = w.phase if w.phase in ("measured", "cooldown") else self.phase_of(t)
        cells, hists = {}, {}
        for key, cell in sorted(w.endpoints.items()):
            cells[key] = WindowCell(count=cell.count, failures=dict(sorted(cell.failures.items())))
            hists[key] = (hdr.merge(cell.raw), hdr.merge(cell.corrected))
        if phase == "measured" and self._paced_second(t):
            self._pace.update(intended=w.tasks_intended, started=w.tasks_started,
                              requests=sum(c.count for c in w.endpoints.values()))
        spawning = self.spawn_complete_at is None or t < self.spawn_complete_at
        record = ClientWindow(t=t, phase=phase, users=self.users_at(t), spawning=spawning,
                              tasks_intended=w.tasks_intended, tasks_started=w.tasks_started,
                              endpoints=cells, freshness_visible=w.freshness_visible,
                              freshness_timeouts=w.freshness_timeouts)
        return ClosedWindow(record, hists)

    def _paced_second(self, t: int) -> bool:
        """Pacing rates leave out the last, partial second of the measured window."""
        return self.stopping_at is None or t < math.floor(self.stopping_at)

    # -- reading ------------------------------------------------------------------------

    def live(self, now: float, horizon: float, users: int) -> LiveStatus:
        """Progress over the last `LIVE_SPAN_S` complete seconds before `horizon`."""
        return live_status(self.windows, now, horizon, users, phase=self.phase(now),
                           started_at=self.started_at, measure_from=self.measure_from)

    def pacing(self) -> Pacing:
        """Intended vs achieved task starts over the closed measured seconds."""
        if self._boundary is None or self.stopping_at is None:
            return Pacing()
        first = max(self._boundary, math.floor(self.started_at or self._boundary))
        last = math.floor(self.stopping_at)
        seconds = last - max(self.measure_from or first, first)  # the first may be partial
        if seconds <= 0:
            return Pacing()
        intended, started = self._pace["intended"], self._pace["started"]
        out = Pacing(intended_tasks=intended, started_tasks=started,
                     achieved_request_rps=round(self._pace["requests"] / seconds, 3))
        if intended:
            out.intended_rps = round(intended / seconds, 3)
            out.achieved_rps = round(started / seconds, 3)
            out.shortfall_ratio = round(max(0.0, 1.0 - started / intended), 4)
        return out

    def client_doc(self, locust_version: str, role: str, workers: int,
                   **extra: object) -> ClientDoc:
        """`client.json`; call after the last window was taken (`take_closed(inf)`)."""
        endpoints = {
            key: ClientEndpoint(
                count=tot.count, failures=dict(sorted(tot.failures.items())), bytes=tot.bytes,
                histogram=hdr.encode(tot.raw), corrected_histogram=hdr.encode(tot.corrected),
                x_cache=dict(sorted(tot.x_cache.items())), degraded=tot.degraded,
                partial=tot.partial, warmup_count=tot.warmup_count,
                warmup_failures=tot.warmup_failures, cooldown_count=tot.cooldown_count,
                cooldown_failures=tot.cooldown_failures, traced=tot.traced,
                **_samples(tot))
            for key, tot in sorted(self.totals.items())
        }
        checks = Checks(
            tenant_leaks=self.tenant_leaks,
            unexpected_statuses={k: dict(sorted(v.items()))
                                 for k, v in sorted(self.unexpected.items())},
            degraded_responses=sum(t.degraded for t in self.totals.values()),
            partial_responses=sum(t.partial for t in self.totals.values()),
            freshness=Freshness(samples=self.freshness.get_total_count(),
                                timeouts=self.freshness_timeouts,
                                histogram=hdr.encode(self.freshness)))
        health = generator_health(list(self.processes.values()))
        return ClientDoc(
            locust_version=locust_version, role=role, started_at=self.started_at,
            spawn_complete_at=self.spawn_complete_at, measure_from=self.measure_from,
            stopping_at=self.stopping_at, ended_at=self.ended_at, warmup_s=self.warmup_s,
            workers=workers, endpoints=endpoints, checks=checks, pacing=self.pacing(),
            generator=health, events=sorted(self.events, key=lambda e: e.t),
            traces=self.traces.doc() if self.traces is not None else None,
            writes=AcknowledgedWrites(ids=sorted(self.acknowledged),
                                      duplicates=self.duplicate_acks), **extra)


def _samples(tot: _Totals) -> dict[str, dict[str, list[str]]]:
    """`ClientEndpoint.error_samples` of an endpoint (nothing until the model has it)."""
    held = {kind: fs.messages() for kind, fs in sorted(tot.samples.items())}
    return {"error_samples": held} if held else {}
