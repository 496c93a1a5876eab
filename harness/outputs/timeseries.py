"""`timeseries.csv`: one row per second and endpoint, for spreadsheets and pandas.

A view of the run record's windows; `result.json` and the interval log stay
the source of truth.
"""

from __future__ import annotations

import csv
from pathlib import Path

from harness import hdr

TIMESERIES_COLUMNS = ("t", "phase", "users", "endpoint", "count", "failures", "rps",
                      "p50_ms", "p95_ms", "p99_ms", "max_ms")


def timeseries_rows(windows: list[dict]) -> list[dict]:
    """One row per (second, endpoint), percentiles from that second's exact histogram."""
    rows = []
    for w in windows:
        for name, data in sorted(w.get("endpoints", {}).items()):
            s = hdr.summary(hdr.decode(data["histogram"])) if data.get("histogram") else {}
            rows.append({"t": w.get("t"), "phase": w.get("phase"), "users": w.get("users"),
                         "endpoint": name, "count": data.get("count", 0),
                         "failures": data.get("failures", 0),
                         "rps": data.get("count", 0) / max(w.get("seconds", 1) or 1, 1e-9),
                         "p50_ms": s.get("p50_ms"), "p95_ms": s.get("p95_ms"),
                         "p99_ms": s.get("p99_ms"), "max_ms": s.get("max_ms")})
    return rows


def write_timeseries(windows: list[dict], path: Path) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=TIMESERIES_COLUMNS)
        writer.writeheader()
        writer.writerows(timeseries_rows(windows))
