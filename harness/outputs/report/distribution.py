"""Section 5: latency distributions and the shift function, current against baseline.

* **Percentile curves**, as HdrHistogram's plotter draws them: latency against the
  percentile on a logarithmic "nines" axis (x = 1 / (1 - q): 10 is p90, 100 p99,
  1000 p99.9), from each endpoint's whole-window histogram, raw and corrected for
  coordinated omission; the baseline's (its rounds merged exactly) beside them.
  Points stop where the histogram runs out of requests (x past the count says
  nothing the max does not).
* **Shift function** (Doksum; Rousselet, Pernet & Wilcox 2017): how much each decile
  moved, not only one percentile. Here it is current / baseline - 1 at deciles 10 ..
  90, with a 95% band from the gate's own block bootstrap over the interval log
  (`harness.analysis.blocks` + `stats.bootstrap_quantiles`, same blocks, same seed):
  requests within a run are autocorrelated, so they are never resampled alone.
  A flat line is a uniform slowdown; a rising one, a slower tail.
"""

from __future__ import annotations

import math

import numpy as np

from harness import hdr
from harness.analysis import blocks, stats
from harness.model.result import RunResult
from harness.outputs.numbers import ms
from harness.outputs.report.inputs import ReportInputs, Side
from harness.outputs.report.series import chart, endpoint_windows

NINES_AXIS = {"label": "percentile", "unit": "", "kind": "nines"}
DECILE_AXIS = {"label": "decile of the latency distribution", "unit": "%", "kind": "decile"}
DECILES = (10, 20, 30, 40, 50, 60, 70, 80, 90)
NINES = np.round(10 ** np.linspace(0, 5, 51), 6)
"""x = 1 / (1 - q) from p0 to p99.999, ten points a decade."""
RESAMPLES = 500
"""Enough for a band drawn at the eye's precision; the gate's own checks use 2000."""
BAND_ALPHA = 0.025


def curve(encoded: str | hdr.HdrHistogram | None) -> list[float | None]:
    """Latency (ms) at every point of `NINES` (None past the histogram's resolution)."""
    histogram = hdr.decode(encoded) if isinstance(encoded, str) and encoded else encoded
    total = histogram.get_total_count() if histogram is not None else 0
    if total == 0:
        return [None] * len(NINES)
    pcts = [100 * (1 - 1 / x) for x in NINES]
    values = hdr.values_at_percentiles(histogram, pcts)
    return [round(v / 1000, 3) if x <= max(total, 1) * 1.0001 else None
            for x, v in zip(NINES, values, strict=True)]


def _merged(results: list[RunResult], key: str, field: str) -> hdr.HdrHistogram | None:
    encoded = [getattr(r.endpoints[key], field) for r in results if key in r.endpoints]
    return hdr.merge(e for e in encoded if e) if encoded else None


def _measured(side: Side, key: str) -> blocks.WindowCounts:
    _, counts = endpoint_windows(side, key)
    phases = [w.phase for w in side.result.windows.seconds]
    keep = [i for i, p in enumerate(phases) if p == "measured"]
    return blocks.WindowCounts(counts.layout, tuple(counts.index[i] for i in keep),
                               tuple(counts.count[i] for i in keep))


def shift(inputs: ReportInputs, key: str, block_s: int) -> dict | None:
    """The shift function of one endpoint: rows per decile and its chart (None: no
    baseline windows to compare with)."""
    base = [s for s in inputs.baseline if s.log is not None and key in s.result.endpoints]
    cur = [s for s in inputs.currents if s.log is not None and s.result.windows is not None
           and key in s.result.endpoints]
    if not base or not cur:
        return None
    pb, pc = blocks.block_pair([_measured(s, key) for s in base],
                               [_measured(s, key) for s in cur], block_s)
    if pb.requests == 0 or pc.requests == 0:
        return None
    effects = stats.bootstrap_quantiles(pb, pc, DECILES, resamples=RESAMPLES, seed=0)
    rows, change, lo, hi = [], [], [], []
    for d in DECILES:
        e = effects[d]
        c = math.exp(e.estimate) - 1 if math.isfinite(e.estimate) else None
        a, b = e.interval(BAND_ALPHA) if math.isfinite(e.se) else (math.nan, math.nan)
        band = (math.exp(a) - 1, math.exp(b) - 1) if math.isfinite(a) else None
        rows.append({"decile": f"p{d}", "baseline": ms(e.baseline / 1000),
                     "current": ms(e.current / 1000),
                     "change": "–" if c is None else f"{100 * c:+.1f}%",
                     "band": "unbounded (too few blocks)" if band is None
                     else f"[{100 * band[0]:+.1f}%, {100 * band[1]:+.1f}%]"})
        change.append(None if c is None else round(100 * c, 2))
        lo.append(None if band is None else round(100 * band[0], 2))
        hi.append(None if band is None else round(100 * band[1], 2))
    names = ("B", "A") if inputs.comparison else ("current", "baseline")
    plot = chart(f"{key}: shift function", f"{names[0]} / {names[1]} − 1", "%",
                 [{"label": "change"}, {"label": "95% band low", "color": "#9ab", "dash": True},
                  {"label": "95% band high", "color": "#9ab", "dash": True}],
                 [list(DECILES), change, lo, hi], x=DECILE_AXIS, bands=[[3, 2]],
                 note=f"block bootstrap, {block_s} s blocks ({pb.n_blocks} baseline, "
                      f"{pc.n_blocks} current), {RESAMPLES} resamples")
    return {"rows": rows, "chart": plot}


def distributions(inputs: ReportInputs) -> dict:
    """Section 5: per endpoint, percentile curves and (with a baseline) the shift function."""
    cur = inputs.current.result
    currents = [s.result for s in inputs.currents]
    base = [s.result for s in inputs.baseline]
    block_s = inputs.gate.block_s if inputs.gate else blocks.DEFAULT_BLOCK_S
    base_name, cur_name = inputs.labels
    cur_name = cur_name or "current"
    out = []
    for key, e in cur.endpoints.items():
        if e.count == 0:
            out.append({"key": key, "message": "no requests in the measured window"})
            continue
        raw, corrected = ((e.histogram, e.corrected_histogram) if len(currents) == 1 else
                          (_merged(currents, key, "histogram"),
                           _merged(currents, key, "corrected_histogram")))
        series = [{"label": cur_name}, {"label": f"{cur_name}, corrected", "dash": True}]
        data = [[float(x) for x in NINES], curve(raw), curve(corrected)]
        merged = _merged(base, key, "histogram") if base else None
        if merged is not None and merged.get_total_count():
            series.append({"label": base_name, "color": "#888"})
            data.append(curve(merged))
            if inputs.comparison:
                series.append({"label": f"{base_name}, corrected", "color": "#888",
                               "dash": True})
                data.append(curve(_merged(base, key, "corrected_histogram")))
        plot = chart(f"{key}: latency by percentile", "latency", "ms", series, data,
                     x=NINES_AXIS, log_y=True)
        out.append({"key": key, "chart": plot, "shift": shift(inputs, key, block_s),
                    "message": None, "names": {"current": cur_name, "baseline": base_name}})
    note = None
    if not base:
        note = "no baseline: the curves show this run alone and there is no shift function"
    elif cur.windows is None:
        note = "a v1 record has no windows: no shift function"
    return {"endpoints": out, "note": note}
