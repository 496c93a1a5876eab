"""How each injected fault hurt the clients, and how long the service took to recover.

Pure: the run's one-second windows, each second's latency histogram (every endpoint
merged), the server's scrape series and the faults' real start and end times in, one
`Recovery` per fault out. The resolution is the window's: one second. A second is
addressed by its start (the second requests *started* in), so "from the fault's end
to the first success" is `max(0, t - end)` for the first second `t` holding a
success, and 0.0 means "in the very second the fault ended".

The rules (each unit-tested on synthetic windows, tests/analysis/test_recovery.py):

* the fault's *span* runs from the second it started in up to (not including) the
  first second after the last it was active in (start to `ended_at`: a pause's
  resume, a restart's or a killed target's return) with requests and no failure;
  `failures`, `requests_during` and `degraded_during` count that span (a fault that
  changed nothing has a span of its own seconds only, and no failures). A second the
  fault was active in never ends it: it holds requests from before the fault began
  (a target killed at x.7 leaves second x clean of failures) or from while it lasted;
* `pre_fault_p95_ms` is the p95 of every request of the up to 10 measured seconds
  before the fault that no other fault was active in (None: there are none);
* `p95_recovered_s`: the first second from the fault's end whose rolling 3-second p95
  (seconds from the end on only) is within `RECOVERED_P95_RATIO` of the pre-fault p95
  and stays so for the next two seconds as well; None when that never happens in the
  measured window, or there is no pre-fault p95 to return to;
* freshness: `freshness_timeouts_during` counts the writes started in the span that
  were not visible within the bound, `write_visible_again_s` is from the fault's end to
  the first second from the end whose writes were seen in time; both need the writer's
  freshness per second (`freshness`), otherwise they stay 0 and None and
  `FRESHNESS_MISSING` says why;
* times count from the fault's end for a fault with a duration (db-pause, stub) and
  from its start for an instantaneous one (a db-restart's own seconds are outage);
* faults that overlap are each judged on their own: a failure inside both spans
  counts for both.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from harness import hdr
from harness.model.chaos import RECOVERED_P95_RATIO, FaultRecord, Recovery
from harness.model.client import ClientWindow
from harness.model.server import ServerSample

SERVED_LIVE = frozenset({"live"})
"""The service's `upstream_fallbacks` label of an answer that was not degraded."""
PRE_FAULT_S = 10
"""Seconds before a fault its p95 baseline is taken from."""
ROLLING_S = 3
"""Seconds of the rolling p95, and how long it must stay recovered."""
FRESHNESS_MISSING = ("recovery: the writer's freshness is not recorded per second "
                     "(windows.jsonl has no freshness), so freshness_timeouts_during and "
                     "write_visible_again_s are not measured")


@dataclass(frozen=True)
class SecondFreshness:
    """The writer's writes started in one second: seen in the overview within the
    freshness bound (`visible`), and not (`timeouts`)."""

    visible: int = 0
    timeouts: int = 0


@dataclass(frozen=True)
class _Second:
    t: int
    requests: int
    failures: dict[str, int]

    @property
    def failed(self) -> int:
        return sum(self.failures.values())


def _seconds(windows: Sequence[ClientWindow]) -> dict[int, _Second]:
    """The measured seconds: requests and failures by kind, every endpoint together."""
    out: dict[int, _Second] = {}
    for w in windows:
        if w.phase != "measured":
            continue
        failures: dict[str, int] = {}
        requests = 0
        for cell in w.endpoints.values():
            requests += cell.count
            for kind, n in cell.failures.items():
                failures[kind] = failures.get(kind, 0) + n
        have = out.get(w.t)
        if have is not None:  # lines of one second are added (merge_windows does it too)
            requests += have.requests
            for kind, n in have.failures.items():
                failures[kind] = failures.get(kind, 0) + n
        out[w.t] = _Second(w.t, requests, failures)
    return out


def _p95_ms(latency: Mapping[int, hdr.HdrHistogram], seconds: Sequence[int]) -> float | None:
    histograms = [latency[t] for t in seconds if t in latency]
    if not histograms:
        return None
    merged = hdr.merge(histograms)
    if merged.get_total_count() == 0:
        return None
    return hdr.values_at_percentiles(merged, [95.0])[0] / 1000.0


def _active(fault: FaultRecord) -> tuple[int, int] | None:
    """The seconds a fault was active in (first, last), None if it never started."""
    if fault.started_at is None:
        return None
    end = fault.ended_at if fault.ended_at is not None else fault.started_at
    return math.floor(fault.started_at), math.floor(max(end, fault.started_at))


def recovery(fault: FaultRecord, others: Sequence[FaultRecord],
             windows: Sequence[ClientWindow], latency: Mapping[int, hdr.HdrHistogram],
             series: Sequence[ServerSample] = (),
             freshness: Mapping[int, SecondFreshness] | None = None) -> Recovery | None:
    """The figures of one fault (None: it was never injected). `others` are the run's
    other faults (their active seconds are kept out of this one's baseline);
    `latency` maps a second to the histogram of every request started in it."""
    active = _active(fault)
    if active is None or fault.started_at is None:
        return None
    start = fault.started_at
    # an instantaneous fault is measured from its start (a restart's own seconds count
    # as the outage they are), one with a duration from when it was undone
    timed = fault.spec.duration_s is not None and fault.ended_at is not None
    end = fault.ended_at if timed else start
    seconds = _seconds(windows)
    if not seconds:
        return Recovery()
    last = max(seconds)
    (first_s, last_active), end_s = active, math.floor(end)
    after = [t for t in range(end_s, last + 1) if t in seconds]

    clean = next((t for t in range(last_active + 1, last + 1) if t in seconds
                  and seconds[t].requests and not seconds[t].failed), None)
    span_from = first_s
    span_to = (last + 1) if clean is None else clean
    span = [t for t in range(span_from, span_to) if t in seconds]
    failures: dict[str, int] = {}
    for t in span:
        for kind, n in seconds[t].failures.items():
            failures[kind] = failures.get(kind, 0) + n

    success = next((t for t in after if seconds[t].requests > seconds[t].failed), None)

    busy = {t for other in others if other is not fault and (a := _active(other))
            for t in range(a[0], a[1] + 1)}
    before = [t for t in range(first_s - PRE_FAULT_S, first_s) if t in seconds
              and t not in busy]
    pre = _p95_ms(latency, before)
    recovered = None
    if pre is not None:
        ok = {t: (p := _p95_ms(latency, range(max(end_s, t - ROLLING_S + 1), t + 1))) is not None
              and p <= RECOVERED_P95_RATIO * pre for t in after}
        recovered = next((t for t in after
                          if all(ok.get(t + k, False) for k in range(ROLLING_S))), None)

    degraded = sum(n for s in series for source, n in s.upstream_fallbacks.items()
                   if source not in SERVED_LIVE
                   and s.phase == "measured" and s.t > span_from and s.since < span_to)
    timeouts, visible_again = None, None
    if freshness is not None:
        timeouts = sum(freshness[t].timeouts for t in range(span_from, span_to)
                       if t in freshness)
        visible_again = next((t for t in sorted(freshness) if t >= end_s
                              and freshness[t].visible > 0), None)

    def since_end(t: int | None) -> float | None:
        return None if t is None else round(max(0.0, t - end), 3)

    return Recovery(
        failures=failures, requests_during=sum(seconds[t].requests for t in span),
        degraded_during=round(degraded), first_success_s=since_end(success),
        pre_fault_p95_ms=pre, p95_recovered_s=since_end(recovered),
        freshness_timeouts_during=timeouts, write_visible_again_s=since_end(visible_again))


def recoveries(faults: Sequence[FaultRecord], windows: Sequence[ClientWindow],
               latency: Mapping[int, hdr.HdrHistogram], series: Sequence[ServerSample] = (),
               freshness: Mapping[int, SecondFreshness] | None = None) -> list[FaultRecord]:
    """Every fault with its `recovery` filled (a copy; the input is left as it is)."""
    return [f.model_copy(update={"recovery": recovery(f, faults, windows, latency, series,
                                                      freshness)})
            for f in faults]
