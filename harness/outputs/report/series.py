"""The client side over time (sections 4 and 6): per-window percentiles, throughput, errors.

Every chart of the page is a `chart(...)` dict: uPlot's columnar `data` (x first,
then one column per series, `None` for a gap), the axes' labels and units, a legend
entry per series, and the run's timeline drawn on top (`shade`: the phases outside
the measured window, `marks`: fault switches and phase changes). The page's script
draws it as it is, so a later page (`--compare`, `--history`) only has to produce the
same dicts.

Time is in seconds since the measured window opened, so a baseline's series lines up
with the current run's whatever day it ran. Percentiles of a second come from that
second's exact histogram in the interval log (HdrHistogram's own percentile rule, the
same figures as `timeseries.csv`), never from averages of percentiles.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
import pandas as pd

from harness.analysis import blocks
from harness.model.intervals import IntervalLog
from harness.model.result import RunResult
from harness.outputs.report import sparse
from harness.outputs.report.inputs import ReportInputs, Side

TIME_AXIS = {"label": "time since the measured window opened", "unit": "s", "kind": "time"}
PHASE_LABELS = {"ramp": "ramp-up", "warmup": "warm-up", "cooldown": "cool-down"}


def chart(title: str, y_label: str, y_unit: str, series: Sequence[dict], data: list[list],
          x: dict | None = None, log_y: bool = False, shade: list | None = None,
          marks: list | None = None, bands: list | None = None, note: str = "") -> dict:
    """One chart as the page's script draws it (see the module docstring)."""
    return {"title": title, "x": x or TIME_AXIS,
            "y": {"label": y_label, "unit": y_unit, "log": log_y},
            "series": list(series), "data": data, "shade": shade or [], "marks": marks or [],
            "bands": bands or [], "note": note}


def _epoch(iso: str | None) -> float | None:
    return datetime.fromisoformat(iso).timestamp() if iso else None


def origin(result: RunResult) -> float:
    """Epoch second the measured window opened (the first spawn when it never did)."""
    t = _epoch(result.run.measure_from)
    if t is None and result.windows and result.windows.seconds:
        measured = [w.t for w in result.windows.seconds if w.phase == "measured"]
        t = measured[0] if measured else result.windows.seconds[0].t
    return t if t is not None else _epoch(result.run.started_at) or 0.0


def timeline(result: RunResult) -> tuple[list, list]:
    """(shade, marks): phases outside the measured window as [x0, x1, label] spans, and
    the run's events (fault switches, phase changes) as [x, label] lines."""
    t0 = origin(result)
    shade: list = []
    for w in result.windows.seconds if result.windows else []:
        if w.phase == "measured":
            continue
        label = PHASE_LABELS.get(w.phase, w.phase)
        if shade and shade[-1][2] == label and shade[-1][1] == w.t - t0:
            shade[-1][1] = w.t + 1 - t0
        else:
            shade.append([w.t - t0, w.t + 1 - t0, label])
    marks = [[round(e.t - t0, 3), e.name + ("" if e.ok else f" (failed: {e.error})")]
             for e in result.events]
    return shade, marks


def endpoint_windows(side: Side, key: str, kind: str = "raw") -> tuple[list[int],
                                                                       blocks.WindowCounts]:
    """Every second of the run (epoch) and its sparse histogram buckets for `key`, each
    log line decoded once per page (kept on the side for the other sections)."""
    cached = side.cache.get((key, kind))
    if cached is None:
        seconds = [w.t for w in side.result.windows.seconds] if side.result.windows else []
        log = side.log
        cached = (seconds, sparse.window_counts(
            [log.encoded(key, t, kind) if log is not None else None for t in seconds],
            side.cache.get("decoded")))
        side.cache[(key, kind)] = cached
    return cached


def sparse_quantiles(counts: blocks.WindowCounts, percentiles: Sequence[float]
                     ) -> list[list[float | None]]:
    """Each window's percentiles in ms from its sparse buckets, exactly HdrHistogram's
    `get_value_at_percentile` for p > 0 (its target rank, the bucket's highest equivalent
    value).

    All windows at once: one running sum over the windows' buckets laid end to end, so
    a window's rank is a position in it past the windows before."""
    _, highest = blocks.bucket_values(counts.layout)
    sizes = np.fromiter((len(c) for c in counts.count), dtype=np.int64, count=len(counts))
    if not sizes.sum():
        return [[None] * len(counts) for _ in percentiles]
    index = np.concatenate(counts.index)
    cum = np.cumsum(np.concatenate(counts.count))
    ends = np.cumsum(sizes)
    totals = np.diff(np.concatenate([[0.0], cum[ends[sizes > 0] - 1]]))
    before = cum[ends[sizes > 0] - 1] - totals  # requests of the windows before each
    cols: list[list[float | None]] = []
    for p in percentiles:
        target = np.maximum(np.floor(min(p, 100.0) * totals / 100 + 0.5), 1)
        at = np.searchsorted(cum, before + target - 0.5, side="left")
        values = iter(np.round(highest[index[at]] / 1000, 3).tolist())
        cols.append([next(values) if n else None for n in sizes])
    return cols


def window_percentiles(side: Side, key: str, percentiles: Sequence[float] = (50, 95, 99)
                       ) -> tuple[list[float], list[list[float | None]]]:
    """(x, one column per percentile in ms) for every second of the run (None: no request)."""
    seconds, counts = endpoint_windows(side, key)
    t0 = origin(side.result)
    return [t - t0 for t in seconds], sparse_quantiles(counts, percentiles)


def _aligned(xs: list[float], other_x: list[float], other: list[float | None]) -> list:
    by_x = dict(zip(other_x, other, strict=True))
    return [by_x.get(x) for x in xs]


def latency_over_time(inputs: ReportInputs) -> dict:
    """Section 4: p50/p95/p99 per endpoint per second, the baseline's p95 dashed."""
    cur = inputs.current
    if cur.result.windows is None:
        return {"charts": [], "message": "this record has no per-second windows "
                "(schema_version 1): there is no latency over time to show"}
    if cur.log is None:
        return {"charts": [], "message": "the interval log is missing: per-second "
                "percentiles cannot be computed"}
    shade, marks = timeline(cur.result)
    base = inputs.baseline[0] if inputs.baseline and inputs.baseline[0].log else None
    base_name, cur_name = inputs.labels
    # a compare page overlays A's p50 and p95 on B's; a single-run page its baseline's p95
    reference = (50, 95) if inputs.comparison else (95,)
    charts = []
    for key, e in cur.result.endpoints.items():
        if e.count == 0:
            charts.append({"title": key, "message": "no requests in the measured window"})
            continue
        xs, cols = window_percentiles(cur, key)
        series = [{"label": f"{cur_name} p{p}".strip()} for p in (50, 95, 99)]
        data = [xs, *cols]
        if base is not None and key in base.result.endpoints:
            bx, bcols = window_percentiles(base, key, reference)
            for p, col, grey in zip(reference, bcols, ("#888", "#555"), strict=False):
                series.append({"label": f"{base_name} p{p}", "dash": True, "color": grey})
                data.append(_aligned(xs, bx, col))
        charts.append(chart(key, "latency", "ms", series, data, shade=shade, marks=marks,
                            log_y=True))
    return {"charts": charts, "message": None if charts else "no endpoints",
            "rounds_note": _rounds_note(inputs)}


def _rounds_note(inputs: ReportInputs) -> str | None:
    """Over time, a side of several runs is drawn by its first round (rounds have their
    own timelines); the tables and distributions pool every round."""
    if len(inputs.currents) < 2 and len(inputs.baseline) < 2:
        return None
    return ("over time, each side is drawn by its first run; the tables and "
            "distributions pool every round, and every round's data is embedded")


def window_frame(result: RunResult) -> pd.DataFrame:
    """The windows as a long table: one row per second and endpoint (`endpoint` "" for a
    second without requests), x in seconds since the measured window opened."""
    t0 = origin(result)
    rows = []
    for w in result.windows.seconds if result.windows else []:
        cells = w.endpoints.items() or [("", None)]
        for key, cell in cells:
            rows.append((w.t - t0, w.phase, w.users, key, cell.count if cell else 0,
                         sum(cell.failures.values()) if cell else 0))
    return pd.DataFrame(rows, columns=["x", "phase", "users", "endpoint", "count", "failures"])


def throughput_over_time(inputs: ReportInputs) -> dict:
    """Section 6: requests and failures per second, per endpoint and in all, with users."""
    result = inputs.current.result
    if result.windows is None:
        return {"charts": [], "message": "this record has no per-second windows "
                "(schema_version 1): throughput over time is not available"}
    shade, marks = timeline(result)
    frame = window_frame(result)
    if frame.empty:
        return {"charts": [], "message": "the record has no windows: the run never started "
                "its load"}
    keys = list(result.endpoints)
    count = frame.pivot_table(index="x", columns="endpoint", values="count", aggfunc="sum",
                              fill_value=0).reindex(columns=keys, fill_value=0)
    failed = frame.pivot_table(index="x", columns="endpoint", values="failures", aggfunc="sum",
                               fill_value=0).reindex(columns=keys, fill_value=0)
    xs = [float(x) for x in count.index]
    rps = [count[k].astype(int).tolist() for k in keys]
    fails = [failed[k].astype(int).tolist() for k in keys]
    total = count.sum(axis=1).astype(int).tolist()
    users = frame.groupby("x")["users"].max().reindex(count.index).astype(int).tolist()
    all_series, all_data = [{"label": "all", "color": "#222", "width": 2}], [total]
    base = inputs.baseline[0].result if inputs.baseline else None
    if base is not None and base.windows is not None:
        other = window_frame(base).groupby("x")["count"].sum()
        all_series.append({"label": f"{inputs.labels[0]} all", "color": "#888", "dash": True})
        all_data.append([int(other[x]) if x in other.index else None for x in xs])
    if inputs.comparison:
        all_series[0]["label"] = f"{inputs.labels[1]} all"
    charts = [
        chart("throughput", "requests", "req/s", [*all_series, *({"label": k} for k in keys)],
              [xs, *all_data, *rps], shade=shade, marks=marks),
        chart("users", "users", "users", [{"label": "users", "step": True}], [xs, users],
              shade=shade, marks=marks),
    ]
    if any(any(c) for c in fails):
        charts.insert(1, chart("failures", "failed requests", "req/s",
                               [{"label": k} for k in keys], [xs, *fails], shade=shade,
                               marks=marks))
    return {"charts": charts, "message": None,
            "failures_note": None if any(any(c) for c in fails) else
            "no failed requests in any second of the run"}


def log_text(log: IntervalLog | None) -> str:
    """An in-memory interval log as interval-log text again, for the page's embedded data
    when the file itself is not at hand (runs built in memory): any HdrHistogram tool
    reads it; the max column, which readers do not need, is written as 0."""
    if log is None:
        return ""
    lines = ["#[harness interval log: Tag=<tag>,<start s>,<length s>,<max ms>,<histogram>]"]
    for (tag, t), encoded in sorted(log.entries.items(), key=lambda e: (e[0][1], e[0][0])):
        lines.append(f"Tag={tag},{t:.3f},1.000,0.000,{encoded}")
    return "\n".join(lines) + "\n"
