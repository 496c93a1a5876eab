"""The service's side (sections 7-10): caches, ElevenLabs, the database, where time went.

Tables come from the record's window totals (`server.caches`, `.upstream`, `.db_pool`,
`.queries`, `traces`); charts from `server.series`, one row per 2 s scrape holding the
counter deltas since the previous scrape and the gauges at its time, turned into rates
(per second over the row's own interval) and ratios. Quantiles over time come from each
row's Prometheus buckets, interpolated as `histogram_quantile` does
(`harness.analysis.buckets`). A record without server metrics (the scrapes failed, or a
v1 record without series) gives each section a message instead of an empty chart.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from harness.analysis.buckets import histogram_quantile, padded
from harness.model.server import ServerSample, ServerSide
from harness.model.trace_summary import TRACE_CATEGORIES
from harness.outputs.numbers import ms
from harness.outputs.report.inputs import ReportInputs
from harness.outputs.report.prepare import num
from harness.outputs.report.series import chart, origin, timeline

UPSTREAM_HISTOGRAM = "elevenlabs_upstream_request_duration_seconds"
POOL_HISTOGRAM = "db_pool_acquire_seconds"
NO_SERVER = "no server metrics for the measured window (the scrapes failed or were not taken)"


def _rows(server: ServerSide | None) -> list[ServerSample]:
    return [r for r in server.series if r.t > r.since] if server else []


def _rate(rows: list[ServerSample], get: Callable[[ServerSample], float]) -> list[float]:
    return [round(get(r) / (r.t - r.since), 4) for r in rows]


def _p95(server: ServerSide, rows: list[ServerSample], name: str) -> list[float | None] | None:
    """The p95 (ms) of a service histogram per scrape row, its series summed."""
    bounds = server.histogram_bounds.get(name)
    if not bounds or not any(r.histograms.get(name) for r in rows):
        return None
    n = len(bounds) + 1
    counts = np.array([np.sum([padded(c, n) for c in r.histograms.get(name, {}).values()],
                              axis=0) if r.histograms.get(name) else np.zeros(n) for r in rows])
    q = histogram_quantile(bounds, counts, 0.95)
    return [None if np.isnan(v) else round(float(v) * 1000, 3) for v in q]


def _frame(inputs: ReportInputs) -> tuple[ServerSide | None, list[ServerSample], list, list,
                                          list[float]]:
    result = inputs.current.result
    rows = _rows(result.server)
    shade, marks = timeline(result)
    t0 = origin(result)
    return result.server, rows, shade, marks, [round(r.t - t0, 3) for r in rows]


def _reference(inputs: ReportInputs, xs: list[float],
               get: Callable[[ServerSide, list[ServerSample]], list | None]
               ) -> tuple[dict, list] | None:
    """The baseline's (A's) series of a chart, its scrapes put on the current run's
    (nearest within a second: both scrape every 2 s, from their own start), dashed."""
    base = inputs.baseline[0].result if inputs.baseline else None
    rows = _rows(base.server if base else None)
    if not rows or not xs:
        return None
    values = get(base.server, rows)
    if values is None or all(v is None for v in values):
        return None
    t0 = origin(base)
    bx = np.array([r.t - t0 for r in rows])
    at = np.clip(np.searchsorted(bx, xs), 1, len(bx) - 1) if len(bx) > 1 else np.zeros(
        len(xs), dtype=int)
    out = []
    for x, i in zip(xs, at, strict=True):
        j = i if len(bx) == 1 or abs(bx[i] - x) <= abs(bx[i - 1] - x) else i - 1
        out.append(values[j] if abs(bx[j] - x) <= 1.0 else None)
    return {"label": inputs.labels[0], "color": "#888", "dash": True}, out


def _with_reference(inputs: ReportInputs, xs: list[float], series: list[dict], data: list,
                    get: Callable[[ServerSide, list[ServerSample]], list | None],
                    label: str = "") -> tuple[list[dict], list]:
    ref = _reference(inputs, xs, get)
    if ref is None:
        return series, data
    spec, column = ref
    spec["label"] = f"{spec['label']} {label}".strip()
    return [*series, spec], [*data, column]


def _overall_ratio(server: ServerSide, rows: list[ServerSample]) -> list[float | None]:
    out = []
    for r in rows:
        hits, seen = sum(r.cache_hits.values()), sum(r.cache_hits.values()) + sum(
            r.cache_misses.values())
        out.append(round(100 * hits / seen, 2) if seen else None)
    return out


def caches(inputs: ReportInputs) -> dict:
    """Section 7: hit ratio over time per cache, evictions by cause, stale hits."""
    server, rows, shade, marks, xs = _frame(inputs)
    if server is None:
        return {"message": NO_SERVER, "rows": [], "charts": []}
    base = inputs.baseline[0].result.server if inputs.baseline else None
    table = []
    for name, c in sorted(server.caches.items()):
        b = base.caches.get(name) if base else None
        table.append({"name": name, "hits": num(c.hits, 0), "misses": num(c.misses, 0),
                      "stale": num(c.stale_hits, 0),
                      "ratio": num(100 * c.hit_ratio, 1, "%") if c.hit_ratio is not None else "–",
                      "baseline": (num(100 * b.hit_ratio, 1, "%") if b and b.hit_ratio is not None
                                   else "–") if base else None,
                      "evictions": ", ".join(f"{k} {v:,.0f}" for k, v in sorted(c.evictions.items())
                                             if v) or "none"})
    charts = []
    names = sorted(server.caches)
    if rows and names:
        def ratio(r: ServerSample, n: str) -> float | None:
            seen = r.cache_hits.get(n, 0) + r.cache_misses.get(n, 0)
            return round(100 * r.cache_hits.get(n, 0) / seen, 2) if seen else None
        series, data = _with_reference(inputs, xs, [{"label": n} for n in names],
                                       [xs, *([ratio(r, n) for r in rows] for n in names)],
                                       _overall_ratio, "all caches")
        charts.append(chart("hit ratio per scrape", "hit ratio", "%", series, data,
                            shade=shade, marks=marks))
        stale = [_rate(rows, lambda r, n=n: r.cache_stale_hits.get(n, 0)) for n in names]
        if any(any(s) for s in stale):
            charts.append(chart("stale hits", "stale hits", "/s", [{"label": n} for n in names],
                                [xs, *stale], shade=shade, marks=marks))
    return {"message": None if table else "the service reported no caches (naive profile?)",
            "rows": table, "charts": charts, "has_baseline": base is not None}


def upstream(inputs: ReportInputs) -> dict:
    """Section 8: ElevenLabs requests, retries, amplification, failures, fallbacks, latency
    and the breaker over time."""
    server, rows, shade, marks, xs = _frame(inputs)
    if server is None:
        return {"message": NO_SERVER, "facts": [], "charts": []}
    u = server.upstream
    if u is None or not (u.logical_requests or u.attempts):
        return {"message": "no ElevenLabs requests in the measured window", "facts": [],
                "charts": []}
    lat = u.latency_ms
    facts = [("logical requests", num(u.logical_requests, 0)), ("attempts", num(u.attempts, 0)),
             ("retry amplification", num(u.retry_amplification, 3) + " attempts per request"),
             ("retry rate", num(100 * u.retry_rate, 2, "%") if u.retry_rate is not None else "–"),
             ("retries by reason", ", ".join(f"{k} {v:,.0f}" for k, v in sorted(u.retries.items())
                                             if v) or "none"),
             ("failure rate", num(100 * u.failure_rate, 2, "%") if u.failure_rate is not None
              else "–"),
             ("failures", ", ".join(f"{k} {v:,.0f}" for k, v in sorted(u.failures.items()) if v)
              or "none"), ("timeouts", num(u.timeouts, 0)),
             ("fallbacks by source", ", ".join(f"{k} {v:,.0f}" for k, v in
                                               sorted(u.fallbacks.items()) if v) or "none"),
             ("latency p50 / p95 / max", " / ".join(ms(getattr(lat, p) if lat else None)
                                                    for p in ("p50", "p95", "max")) + " ms"),
             ("breaker state (max; 2 = open)", num(u.circuit_open_max, 0))]
    charts = []
    if rows:
        charts.append(chart("ElevenLabs traffic", "rate", "/s",
                            [{"label": "requests"}, {"label": "attempts"}, {"label": "retries"},
                             {"label": "failures"}, {"label": "fallbacks"}],
                            [xs, _rate(rows, lambda r: r.upstream_requests),
                             _rate(rows, lambda r: r.upstream_attempts),
                             _rate(rows, lambda r: sum(r.upstream_retries.values())),
                             _rate(rows, lambda r: sum(r.upstream_failures.values())),
                             _rate(rows, lambda r: sum(r.upstream_fallbacks.values()))],
                            shade=shade, marks=marks))
        p95 = _p95(server, rows, UPSTREAM_HISTOGRAM)
        if p95 is not None:
            series, data = _with_reference(
                inputs, xs, [{"label": f"{inputs.labels[1]} p95".strip()}], [xs, p95],
                lambda srv, rs: _p95(srv, rs, UPSTREAM_HISTOGRAM), "p95")
            charts.append(chart("upstream attempt latency p95", "latency", "ms", series, data,
                                shade=shade, marks=marks))
        if any(r.breaker_state is not None for r in rows):
            charts.append(chart("circuit breaker: 0 closed · 1 half-open · 2 open", "state", "",
                                [{"label": "breaker", "step": True}],
                                [xs, [r.breaker_state for r in rows]], shade=shade, marks=marks))
    return {"message": None, "facts": facts, "charts": charts}


def database(inputs: ReportInputs) -> dict:
    """Section 9: pool size/usage/waits over time, and the named queries by count and p95."""
    server, rows, shade, marks, xs = _frame(inputs)
    if server is None:
        return {"message": NO_SERVER, "pool": [], "queries": [], "charts": []}
    p = server.db_pool
    pool = [("max size", num(p.max_size, 0)), ("size (max)", num(p.size_max, 0)),
            ("in use (max)", num(p.in_use_max, 0)), ("waiting (max)", num(p.waiting_max, 0)),
            ("acquire p95", ms(p.acquire_p95_ms) + " ms"),
            ("acquire timeouts", num(p.acquire_timeouts, 0))]
    base = inputs.baseline[0].result.server if inputs.baseline else None
    queries = [{"name": n, "count": num(q.count, 0), "count_sort": q.count, "p95": ms(q.p95_ms),
                "p95_sort": q.p95_ms if q.p95_ms is not None else -1, "errors": num(q.errors, 0),
                "baseline": (ms(base.queries[n].p95_ms) if n in base.queries else "–")
                if base else None}
               for n, q in sorted(server.queries.items(), key=lambda i: -i[1].count)]
    charts = []
    if rows:
        series, data = _with_reference(
            inputs, xs, [{"label": "size", "step": True}, {"label": "in use", "step": True},
                         {"label": "waiting", "step": True}],
            [xs, [r.pool_size for r in rows], [r.pool_in_use for r in rows],
             [r.pool_waiting for r in rows]],
            lambda srv, rs: [r.pool_in_use for r in rs], "in use")
        charts.append(chart("connection pool", "connections", "connections", series, data,
                            shade=shade, marks=marks))
        p95 = _p95(server, rows, POOL_HISTOGRAM)
        if p95 is not None:
            series, data = _with_reference(
                inputs, xs, [{"label": f"{inputs.labels[1]} p95".strip()}], [xs, p95],
                lambda srv, rs: _p95(srv, rs, POOL_HISTOGRAM), "p95")
            charts.append(chart("pool acquire wait p95", "wait", "ms", series, data,
                                shade=shade, marks=marks))
    return {"message": None, "pool": pool, "queries": queries, "charts": charts,
            "has_baseline": base is not None}


def span_tree(spans: list) -> list[dict]:
    """One trace's spans as waterfall rows, depth-first in start order: name, category,
    depth, start offset and duration (ms) and their place on the trace's time line (%)."""
    if not spans:
        return []
    ids = {s.span_id for s in spans}
    children: dict[str | None, list] = {}
    for s in spans:  # a parent outside the trace (the client's) or itself: a root
        parent = s.parent_id if s.parent_id in ids and s.parent_id != s.span_id else None
        children.setdefault(parent, []).append(s)
    t0 = min(s.start for s in spans)
    total = max(max(s.end for s in spans) - t0, 1)
    rows: list[dict] = []
    roots = children.get(None) or spans  # a cycle of parents: every span, flat
    stack = [(s, 0) for s in sorted(roots, key=lambda s: -s.start)]
    seen: set[str] = set()
    while stack and len(rows) < 200:
        span, depth = stack.pop()
        if span.span_id in seen:
            continue
        seen.add(span.span_id)
        rows.append({"name": span.name or "?", "category": span.category, "depth": depth,
                     "offset": ms((span.start - t0) / 1e6),
                     "duration": ms((span.end - span.start) / 1e6),
                     "left": round(100 * (span.start - t0) / total, 2),
                     "width": max(round(100 * (span.end - span.start) / total, 2), 0.3)})
        stack += [(c, depth + 1) for c in sorted(children.get(span.span_id, []),
                                                 key=lambda s: -s.start)]
    return rows


def traces(inputs: ReportInputs) -> dict:
    """Section 10: where each endpoint's server time went, and its slowest traces."""
    summary = inputs.current.result.traces
    if summary is None:
        return {"message": "the run was not traced (harness run --trace): no span breakdown",
                "endpoints": []}
    endpoints = []
    for key, e in summary.endpoints.items():
        shares = [{"category": c, "share": num(100 * getattr(e.shares, c), 1, "%"),
                   "mean": ms(getattr(e.mean_ms, c))} for c in TRACE_CATEGORIES]
        slow = [{"trace_id": s.trace_id, "client": ms(s.client_ms), "server": ms(s.server_ms),
                 "gap": ms(s.network_queue_ms), "spans": s.spans, "failure": s.failure or "",
                 "breakdown": [{"category": c, "ms": ms(getattr(s.breakdown_ms, c))}
                               for c in TRACE_CATEGORIES] if s.breakdown_ms else [],
                 "tree": span_tree(inputs.current.spans.get(s.trace_id, []))}
                for s in e.slowest]
        endpoints.append({"key": key, "traced": e.traced_requests, "server": e.server_traces,
                          "shares": shares, "slowest": slow})
    gap = summary.client_vs_server
    return {"message": None, "endpoints": endpoints, "spans": summary.spans,
            "traces": summary.traces, "sampling": summary.sampling,
            "overall": [{"category": c, "share": num(100 * getattr(summary.shares, c), 1, "%")}
                        for c in TRACE_CATEGORIES],
            "gap": f"client − server: p50 {ms(gap.p50_ms)} ms, p95 {ms(gap.p95_ms)} ms, "
                   f"max {ms(gap.max_ms)} ms over {gap.samples} samples",
            "no_spans": summary.no_spans, "notes": summary.notes}


def freshness_chart(inputs: ReportInputs) -> dict | None:
    """For section 11: the KPI view's staleness over time, when the service reported it."""
    server, rows, shade, marks, xs = _frame(inputs)
    if server is None or not any(r.kpi_staleness_s is not None for r in rows):
        return None
    series, data = _with_reference(inputs, xs, [{"label": "staleness"}],
                                   [xs, [r.kpi_staleness_s for r in rows]],
                                   lambda srv, rs: [r.kpi_staleness_s for r in rs], "staleness")
    return chart("KPI view staleness", "staleness", "s", series, data, shade=shade,
                 marks=marks)
