"""`timeseries.csv`: one row per second and endpoint, for spreadsheets and pandas.

A view of the run record's windows, with each second's percentiles from its
exact histogram in the interval log; `result.json` and the log stay the
source of truth.
"""

from __future__ import annotations

import csv
from pathlib import Path

from harness.model.intervals import IntervalLog
from harness.model.latency import Latency
from harness.model.result import RunResult

COLUMNS = ("t", "phase", "users", "endpoint", "count", "failures", "rps",
           "p50_ms", "p95_ms", "p99_ms", "max_ms")


def rows(result: RunResult, log: IntervalLog | None) -> list[dict]:
    """One row per (second, endpoint) with requests; no percentiles without a log."""
    out = []
    for w in result.windows.seconds if result.windows else []:
        for key, cell in sorted(w.endpoints.items()):
            lat = Latency.of(log.histogram(key, w.t)) if log is not None else Latency(count=0)
            out.append({"t": w.t, "phase": w.phase, "users": w.users, "endpoint": key,
                        "count": cell.count, "failures": sum(cell.failures.values()),
                        "rps": cell.count, "p50_ms": lat.p50, "p95_ms": lat.p95,
                        "p99_ms": lat.p99, "max_ms": lat.max})
    return out


def write_timeseries(result: RunResult, log: IntervalLog | None, path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows(result, log))
