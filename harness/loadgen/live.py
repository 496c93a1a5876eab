"""What `live.json` says every second: the last few complete seconds of the open windows.

The harness's progress line and `--abort-on` (harness/analysis/abort.py) read it
while the test runs, so it must be cheap and exact: counts and HDR percentiles
of the last `LIVE_SPAN_S` complete seconds, merged from the histogram pieces the
aggregate still holds (windows are handed over only `CLOSE_AFTER_S` later, so the
live span is always open). Pure: reads the windows it is given, nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness import hdr
from harness.model.client import LiveEndpoint, LiveStatus

LIVE_SPAN_S = 5
LIVE_PERCENTILES = (50.0, 90.0, 95.0, 99.0, 100.0)


def live_status(windows: Mapping[int, Any], now: float, horizon: float, users: int, *,
                phase: str, started_at: float | None,
                measure_from: float | None) -> LiveStatus:
    """Progress over the `LIVE_SPAN_S` complete seconds before `horizon`; `windows` maps
    a second to its open window (`endpoints` of cells with `count`, `failures`, `raw`)."""
    end = int(horizon)
    per: dict[str, dict] = {}
    for t in range(end - LIVE_SPAN_S, end):
        w = windows.get(t)
        if w is None:
            continue
        for key, cell in w.endpoints.items():
            acc = per.setdefault(key, {"count": 0, "failures": 0, "pieces": []})
            acc["count"] += cell.count
            acc["failures"] += sum(cell.failures.values())
            acc["pieces"].extend(cell.raw)
    endpoints = {key: _live_endpoint(acc) for key, acc in sorted(per.items())}
    total = _live_endpoint({
        "count": sum(a["count"] for a in per.values()),
        "failures": sum(a["failures"] for a in per.values()),
        "pieces": [p for a in per.values() for p in a["pieces"]]})
    return LiveStatus(t=now, phase=phase, users=users, rps=total.rps, endpoints=endpoints,
                      started_at=started_at, measure_from=measure_from,
                      span_from=float(end - LIVE_SPAN_S), span_to=float(end), total=total)


def _live_endpoint(acc: dict) -> LiveEndpoint:
    """Counts and exact HDR percentiles (ms) of one endpoint's pieces over the live span."""
    count, failures = acc["count"], acc["failures"]
    rps = round(count / LIVE_SPAN_S, 3)
    if not count:
        return LiveEndpoint(rps=rps, p95_ms=None, error_rate=0.0, count=0, failures=failures)
    p50, p90, p95, p99, top = (v / 1000.0 for v in hdr.values_at_percentiles(
        hdr.merge(acc["pieces"]), LIVE_PERCENTILES))
    return LiveEndpoint(rps=rps, p95_ms=p95, error_rate=round(failures / count, 6),
                        count=count, failures=failures, p50_ms=p50, p90_ms=p90, p99_ms=p99,
                        max_ms=top)
