"""The merged view of a test on the Locust master (or the local runner), and `client.json`.

Pure (no Locust, no gevent, no I/O). `RunAggregate.merge` adds the deltas of
:class:`harness.loadgen.recorder.Recorder` exactly: counts add, HDR histograms
add bucket by bucket, in any order. Windows are keyed by the second a request
*started*, and the measured window starts on a whole second, so "requests that
started after the warm-up" is exactly "the windows from `measure_from` on";
per-endpoint totals are classified as they are merged.

`client.json` (schema_version 1), as written by the plugin at the end of a test::

    {"schema_version": 1, "locust_version": "2.47.0", "role": "local|master",
     "started_at": <first spawn, epoch s>, "spawn_complete_at": <first spawning_complete>,
     "measure_from": <start of the measured window>, "ended_at": <test_stopping>,
     "warmup_s": 10.0, "workers": 2, "incomplete_workers": [], "host": "...",
     "locustfiles": "...", "shape": null | "HarnessShape",
     "endpoints": {"GET /api/v1/agents/{agent_id}": {
         "method": "GET", "route": "/api/v1/agents/{agent_id}",
         "count": 1234, "failures": {"http_500": 2, "tenant_leak": 0, ...}, "bytes": 123456,
         "histogram": "<HDR base64, raw latency µs, measured window>",
         "corrected_histogram": "<HDR base64, corrected for coordinated omission>",
         "warmup_count": 100, "warmup_failures": 0, "x_cache": {"HIT": 1000, "MISS": 234},
         "degraded": 0, "partial": 0,
         "latency_ms": {"count", "min_ms", "mean_ms", "max_ms", "p50_ms", ..., "p99_9_ms"},
         "corrected_latency_ms": {...}}},
     "windows": [{"t": 1700000001, "phase": "ramp|warmup|measure", "users": 5,
                  "spawning": true, "tasks_intended": 10, "tasks_started": 9,
                  "endpoints": {"GET /...": {"count": 10, "failures": 0,
                                             "histogram": "<HDR base64>"}}}],
     "checks": {"scope": {...}, "tenant_leaks": 0,
                "unexpected_statuses": {"GET /...": {"500": 2}},
                "degraded_responses": 0, "partial_responses": 0,
                "freshness": {"samples": 12, "timeouts": 0, "histogram": "<HDR µs>",
                              "lag_ms": {...}}},
     "pacing": {"unit": "task starts per second", "intended_rps": 50.0,
                "achieved_rps": 48.7, "shortfall_ratio": 0.026, "intended_tasks": 2922,
                "started_tasks": 2846, "achieved_request_rps": 61.2},
     "generator": {"processes": [{"role": "master|worker|local", "id": "...", "pid": 1,
                                  "host": "...", "cpu_max": 40.0, "cpu_p90": 30.0,
                                  "cpu_above_90_share": 0.0, "samples": 60,
                                  "requests": 1234, "cpu_warnings": 0, "saturated": false}],
                   "saturated": false, "rule": "..."},
     "events": [{"t": 1700000030.1, "name": "faults:flaky"}],
     "histogram_files": {"GET /...": "histograms/get_....hdr"}}

Every window from the first spawn to the end is listed (empty seconds too).
`phase` is `measure` from `measure_from` on, else `ramp` until the first
`spawning_complete`, else `warmup`; `spawning` marks the ramp-up even when it
reaches into the measured window (no warm-up, slow spawn rate).
Scope: latency, throughput, failures per endpoint, degraded/partial counts,
freshness and pacing cover the *measured window*; `checks.tenant_leaks` and
`checks.unexpected_statuses` cover the *whole run* (a correctness failure
during warm-up is still a failure). Pacing rates leave out the last, partial
second.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from harness import hdr
from harness.loadgen.recorder import SCHEMA_VERSION, split_endpoint

LIVE_SPAN_S = 5
CPU_SATURATION_PCT = 90.0
CPU_SATURATION_SHARE = 0.10


class _HistCell:
    """A histogram that is kept encoded once it is old, to bound the master's memory."""

    __slots__ = ("hist", "enc")

    def __init__(self) -> None:
        self.hist = None
        self.enc: str | None = None

    def add(self, encoded: str | None) -> None:
        if not encoded:
            return
        other = hdr.decode(encoded)
        if other.get_total_count() == 0:
            return
        if self.hist is None:
            self.hist = hdr.decode(self.enc) if self.enc else hdr.new_histogram()
            self.enc = None
        hdr.add_into(self.hist, other)

    def freeze(self) -> None:
        if self.hist is not None:
            self.enc = hdr.encode(self.hist)
            self.hist = None

    def histogram(self):
        if self.hist is not None:
            return self.hist
        return hdr.decode(self.enc) if self.enc else hdr.new_histogram()

    def encoded(self) -> str:
        if self.hist is not None:
            return hdr.encode(self.hist)
        return self.enc or hdr.encode(hdr.new_histogram())


@dataclass
class _AggCell:
    count: int = 0
    failures: int = 0
    hist: _HistCell = field(default_factory=_HistCell)


@dataclass
class _AggWindow:
    endpoints: dict[str, _AggCell] = field(default_factory=dict)
    tasks_intended: int = 0
    tasks_started: int = 0


@dataclass
class _Totals:
    """Per endpoint, over the measured window (and the warm-up count)."""

    count: int = 0
    failures: Counter = field(default_factory=Counter)
    raw: object = field(default_factory=hdr.new_histogram)
    corrected: object = field(default_factory=hdr.new_histogram)
    bytes: int = 0
    x_cache: Counter = field(default_factory=Counter)
    degraded: int = 0
    partial: int = 0
    warmup_count: int = 0
    warmup_failures: int = 0


@dataclass
class ProcessHealth:
    role: str
    id: str
    pid: int | None = None
    host: str | None = None
    samples: list = field(default_factory=list)
    cpu_warnings: int = 0
    final: bool = False
    last_horizon: float = 0.0
    reports: int = 0
    requests: int = 0


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


class RunAggregate:
    """The merged view of a test on the master (or the local runner)."""

    def __init__(self, warmup_s: float = 0.0) -> None:
        self.warmup_s = float(warmup_s)
        self.started_at: float | None = None
        self.spawn_complete_at: float | None = None
        self.measure_from: float | None = None
        self._boundary: int | None = None
        self.stopping_at: float | None = None
        self.ended_at: float | None = None
        self.windows: dict[int, _AggWindow] = {}
        self.totals: dict[str, _Totals] = {}
        self.users: dict[int, int] = {}
        self.processes: dict[str, ProcessHealth] = {}
        self.tenant_leaks = 0
        self.unexpected: dict[str, Counter] = {}
        self.freshness = hdr.new_histogram()
        self.freshness_timeouts = 0
        self.events: list[dict] = []

    # -- clock --------------------------------------------------------------------------

    def start(self, t: float) -> None:
        """The first spawn: the measured window begins `warmup_s` later, on a whole second."""
        self.started_at = t
        if self.warmup_s > 0:
            self._boundary = math.ceil(t + self.warmup_s)
            self.measure_from = float(self._boundary)
        else:
            self._boundary = math.floor(t)
            self.measure_from = t

    def spawn_complete(self, t: float) -> None:
        if self.spawn_complete_at is None:
            self.spawn_complete_at = t

    def stopping(self, t: float) -> None:
        if self.stopping_at is None:
            self.stopping_at = t

    def set_users(self, t: float, n: int) -> None:
        self.users[int(t)] = int(n)

    def add_event(self, t: float, name: str, **extra: object) -> None:
        self.events.append({"t": t, "name": name, **extra})

    def in_measure(self, t: int) -> bool:
        return self._boundary is not None and t >= self._boundary

    def phase_of(self, t: int) -> str:
        if self.in_measure(t):
            return "measure"
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
            return "measure"
        return "warmup"

    # -- merging ------------------------------------------------------------------------

    def process(self, key: str, role: str, pid: int | None = None,
                host: str | None = None) -> ProcessHealth:
        p = self.processes.get(key)
        if p is None:
            p = self.processes[key] = ProcessHealth(role=role, id=key, pid=pid, host=host)
        return p

    def merge(self, delta: dict, source: str, role: str = "worker", pid: int | None = None,
              host: str | None = None) -> None:
        """Add one delta of one process (exact; any order)."""
        proc = self.process(source, role, pid, host)
        proc.reports += 1
        proc.requests += int(delta.get("requests", 0))
        proc.samples.extend((float(t), float(v)) for t, v in delta.get("cpu", ()))
        proc.cpu_warnings += int(delta.get("cpu_warnings", 0))
        proc.last_horizon = max(proc.last_horizon, float(delta.get("horizon") or 0.0))
        if delta.get("final"):
            proc.final = True
        for wd in delta.get("windows", ()):
            self._merge_window(wd)

    def _merge_window(self, wd: dict) -> None:
        t = int(wd["t"])
        w = self.windows.get(t)
        if w is None:
            w = self.windows[t] = _AggWindow()
        w.tasks_intended += int(wd.get("tasks_intended", 0))
        w.tasks_started += int(wd.get("tasks_started", 0))
        measured = self.in_measure(t)
        if measured:
            if wd.get("freshness"):
                hdr.add_into(self.freshness, hdr.decode(wd["freshness"]))
            self.freshness_timeouts += int(wd.get("freshness_timeouts", 0))
        for key, c in wd.get("endpoints", {}).items():
            cell = w.endpoints.get(key)
            if cell is None:
                cell = w.endpoints[key] = _AggCell()
            n_fail = sum(c.get("failures", {}).values())
            cell.count += int(c["count"])
            cell.failures += n_fail
            cell.hist.add(c.get("raw"))
            tot = self.totals.get(key)
            if tot is None:
                tot = self.totals[key] = _Totals()
            self.tenant_leaks += int(c.get("failures", {}).get("tenant_leak", 0))
            if c.get("unexpected"):
                self.unexpected.setdefault(key, Counter()).update(
                    {str(k): int(v) for k, v in c["unexpected"].items()})
            if not measured:
                tot.warmup_count += int(c["count"])
                tot.warmup_failures += n_fail
                continue
            tot.count += int(c["count"])
            tot.failures.update(c.get("failures", {}))
            if c.get("raw"):
                hdr.add_into(tot.raw, hdr.decode(c["raw"]))
            if c.get("corrected"):
                hdr.add_into(tot.corrected, hdr.decode(c["corrected"]))
            tot.bytes += int(c.get("bytes", 0))
            tot.x_cache.update(c.get("x_cache", {}))
            tot.degraded += int(c.get("degraded", 0))
            tot.partial += int(c.get("partial", 0))

    def freeze_before(self, t: float) -> None:
        """Keep windows older than `t` encoded only (bounded memory on long runs)."""
        for wt, w in self.windows.items():
            if wt < t:
                for cell in w.endpoints.values():
                    cell.hist.freeze()

    # -- reading ------------------------------------------------------------------------

    def users_at(self, t: int) -> int:
        """Users at the end of window `t` (the nearest sample when there is none for it)."""
        if t in self.users:
            return self.users[t]
        earlier = [k for k in self.users if k <= t]
        if earlier:
            return self.users[max(earlier)]
        later = [k for k in self.users if k > t]
        return self.users[min(later)] if later else 0

    def live(self, now: float, horizon: float, users: int) -> dict:
        """Progress over the last `LIVE_SPAN_S` complete seconds before `horizon`."""
        end = int(horizon)
        start = end - LIVE_SPAN_S
        per: dict[str, dict] = {}
        total = 0
        for t in range(start, end):
            w = self.windows.get(t)
            if w is None:
                continue
            for key, cell in w.endpoints.items():
                acc = per.setdefault(key, {"count": 0, "failures": 0, "hists": []})
                acc["count"] += cell.count
                acc["failures"] += cell.failures
                acc["hists"].append(cell.hist.histogram())
                total += cell.count
        endpoints = {}
        for key, acc in sorted(per.items()):
            merged = hdr.merge(acc["hists"])
            p95 = merged.get_value_at_percentile(95.0) / 1000.0 if acc["count"] else None
            endpoints[key] = {"rps": round(acc["count"] / LIVE_SPAN_S, 3),
                              "p95_ms": p95,
                              "error_rate": round(acc["failures"] / acc["count"], 6)
                              if acc["count"] else 0.0}
        return {"t": now, "phase": self.phase(now), "users": users,
                "rps": round(total / LIVE_SPAN_S, 3), "endpoints": endpoints,
                "started_at": self.started_at, "measure_from": self.measure_from}

    def _measured_span(self) -> tuple[int, int] | None:
        """Windows [first, last) of the measured window, for rates; the last, partial
        second is left out (the first starts at `measure_from`)."""
        if self._boundary is None:
            return None
        end_t = self.stopping_at or self.ended_at
        if end_t is None:
            return None
        first = max(self._boundary, math.floor(self.started_at or self._boundary))
        last = math.floor(end_t)
        return (first, last) if last > first else None

    def pacing(self) -> dict:
        span = self._measured_span()
        out = {"unit": "task starts per second", "intended_rps": None, "achieved_rps": None,
               "shortfall_ratio": None, "intended_tasks": 0, "started_tasks": 0,
               "achieved_request_rps": None}
        if span is None:
            return out
        first, last = span
        intended = sum(w.tasks_intended for t, w in self.windows.items() if first <= t < last)
        started = sum(w.tasks_started for t, w in self.windows.items() if first <= t < last)
        requests = sum(c.count for t, w in self.windows.items() if first <= t < last
                       for c in w.endpoints.values())
        seconds = last - max(self.measure_from or first, first)  # the first may be partial
        out.update(intended_tasks=intended, started_tasks=started,
                   achieved_request_rps=round(requests / seconds, 3))
        if intended:
            out["intended_rps"] = round(intended / seconds, 3)
            out["achieved_rps"] = round(started / seconds, 3)
            out["shortfall_ratio"] = round(max(0.0, 1.0 - started / intended), 4)
        return out

    def generator(self) -> dict:
        procs = []
        saturated = False
        lo = self.measure_from
        hi = self.stopping_at or self.ended_at
        for p in sorted(self.processes.values(), key=lambda p: (p.role != "master", p.id)):
            # each sample is the CPU share since the previous one: weigh it by that interval
            # (a saturated process samples late, so fewer, longer samples)
            timed, prev = [], None
            for t, v in sorted(p.samples):
                timed.append((t, v, min(max(t - prev, 0.0), 60.0) if prev is not None else 1.0))
                prev = t
            window = [(v, w) for t, v, w in timed
                      if (lo is None or t >= lo) and (hi is None or t <= hi)]
            window = window or [(v, w) for _, v, w in timed]
            values = [v for v, _ in window]
            total = sum(w for _, w in window)
            above = sum(w for v, w in window if v > CPU_SATURATION_PCT)
            share = above / total if total else 0.0
            hot = share > CPU_SATURATION_SHARE or p.cpu_warnings > 0
            saturated = saturated or hot
            procs.append({"role": p.role, "id": p.id, "pid": p.pid, "host": p.host,
                          "cpu_max": max(values) if values else None,
                          "cpu_p90": percentile(values, 90.0),
                          "cpu_above_90_share": round(share, 4), "samples": len(values),
                          "requests": p.requests,
                          "cpu_warnings": p.cpu_warnings, "saturated": hot})
        return {"processes": procs, "saturated": saturated,
                "rule": f"a process above {CPU_SATURATION_PCT:.0f}% CPU for more than "
                        f"{CPU_SATURATION_SHARE:.0%} of the measured window, or a Locust "
                        "CPU warning"}

    def endpoint_histograms(self) -> dict[str, tuple]:
        return {k: (t.raw, t.corrected) for k, t in self.totals.items()}

    def client_json(self, locust_version: str, workers: int, extra: dict | None = None) -> dict:
        endpoints = {}
        for key, tot in sorted(self.totals.items()):
            method, route = split_endpoint(key)
            endpoints[key] = {
                "method": method, "route": route, "count": tot.count,
                "failures": dict(sorted(tot.failures.items())), "bytes": tot.bytes,
                "histogram": hdr.encode(tot.raw), "corrected_histogram": hdr.encode(tot.corrected),
                "warmup_count": tot.warmup_count, "warmup_failures": tot.warmup_failures,
                "x_cache": dict(sorted(tot.x_cache.items())), "degraded": tot.degraded,
                "partial": tot.partial,
                "latency_ms": hdr.summary(tot.raw),
                "corrected_latency_ms": hdr.summary(tot.corrected),
            }
        windows = []
        seconds = set(self.windows)
        if self.started_at is not None:
            last = self.stopping_at or self.ended_at or self.started_at
            seconds.update(range(math.floor(self.started_at), math.floor(last) + 1))
        for t in sorted(seconds):
            w = self.windows.get(t) or _AggWindow()
            windows.append({
                "t": t, "phase": self.phase_of(t), "users": self.users_at(t),
                "spawning": self.spawn_complete_at is None or t < self.spawn_complete_at,
                "tasks_intended": w.tasks_intended, "tasks_started": w.tasks_started,
                "endpoints": {k: {"count": c.count, "failures": c.failures,
                                  "histogram": c.hist.encoded()}
                              for k, c in sorted(w.endpoints.items())}})
        out = {
            "schema_version": SCHEMA_VERSION, "locust_version": locust_version,
            "started_at": self.started_at, "spawn_complete_at": self.spawn_complete_at,
            "measure_from": self.measure_from, "ended_at": self.stopping_at or self.ended_at,
            "warmup_s": self.warmup_s, "workers": workers,
            "endpoints": endpoints, "windows": windows,
            "checks": {
                "scope": {"tenant_leaks": "run", "unexpected_statuses": "run",
                          "degraded_responses": "measure", "partial_responses": "measure",
                          "freshness": "measure"},
                "tenant_leaks": self.tenant_leaks,
                "unexpected_statuses": {k: dict(sorted(v.items()))
                                        for k, v in sorted(self.unexpected.items())},
                "degraded_responses": sum(t.degraded for t in self.totals.values()),
                "partial_responses": sum(t.partial for t in self.totals.values()),
                "freshness": {"samples": self.freshness.get_total_count(),
                              "timeouts": self.freshness_timeouts,
                              "histogram": hdr.encode(self.freshness),
                              "lag_ms": hdr.summary(self.freshness)},
            },
            "pacing": self.pacing(),
            "generator": self.generator(),
            "events": sorted(self.events, key=lambda e: e["t"]),
        }
        if extra:
            out.update(extra)
        return out
