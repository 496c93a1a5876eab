"""What the service saw, from its Prometheus scrapes. Pure: text in, numbers out.

The harness scrapes `/metrics` when the measured window opens, when it closes,
and every two seconds throughout (for gauges such as pool usage, whose peaks
fall between two counter readings, and for the server's series over time). Counters and histograms are turned into
window values by subtracting the opening scrape from the closing one; a
counter that went down (a restarted worker) is taken from zero. Histogram
percentiles are interpolated inside Prometheus buckets, exactly as
`histogram_quantile()` does in PromQL, so they are estimates bounded by the
bucket edges; client-side latencies come from exact HDR histograms instead.

The periodic scrapes are read for the series' counters and gauges only
(`SERIES_METRICS`), plus the buckets of the few histograms the gate judges
(`exposition.HISTOGRAMS`), by `exposition.scan` rather than the full parser.
The buckets are kept per series row as observations per bucket
(`exposition.bucket_series`): what `harness.analysis.buckets` resamples for the
gate's p95 checks. Reading the text and its arithmetic are `exposition`'s; this
module says what the numbers mean for a run.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise

from harness.analysis.exposition import (
    BucketScan,
    Samples,
    bucket_bounds,
    bucket_series,
    by_label,
    delta,
    histogram_quantile,
    parse,
    scan,
    scan_buckets,
    select,
    stepwise_delta,
    total,
)
from harness.model.latency import Latency
from harness.model.result import TargetSettings
from harness.model.server import (
    CacheStats,
    FailedScrape,
    PoolStats,
    QueryStats,
    RouteStats,
    ServerSample,
    ServerSide,
    UpstreamStats,
)

SERIES_METRICS = frozenset({
    "http_request_duration_seconds_count", "cache_hits_total", "cache_misses_total",
    "cache_stale_hits_total", "cache_evictions_total", "elevenlabs_requests_total",
    "elevenlabs_attempts_total", "elevenlabs_retries_total", "elevenlabs_failures_total",
    "elevenlabs_fallbacks_total", "elevenlabs_timeouts_total",
    "elevenlabs_upstream_request_duration_seconds_count", "elevenlabs_circuit_breaker_state",
    "db_pool_size", "db_pool_in_use", "db_pool_waiting", "db_pool_max_size",
    "db_pool_acquire_timeouts_total", "db_query_duration_seconds_count",
    "db_query_errors_total", "kpi_view_refreshes_total", "kpi_view_staleness_seconds",
})
"""The samples read from the periodic scrapes: the series' counters and gauges (no
histogram buckets, which are 2/3 of an exposition: parsing every scrape whole made
collecting a 10-minute run take half a minute)."""


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def _ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def _gauge_max(scrapes: Iterable[Samples], name: str) -> float | None:
    values = [total(s, name) for s in scrapes if select(s, name)]
    return max(values) if values else None


def requests_by_route(samples: Samples) -> tuple[dict[str, float], dict[str, float]]:
    """Requests and 5xx answers per "METHOD route", as the service counted them."""
    counts: dict[str, float] = defaultdict(float)
    errors: dict[str, float] = defaultdict(float)
    for labels, value in select(samples, "http_request_duration_seconds_count"):
        key = f"{labels.get('method', '')} {labels.get('route', '')}"
        counts[key] += value
        if labels.get("status", "").startswith("5"):
            errors[key] += value
    return dict(counts), dict(errors)


def routes(window: Samples) -> dict[str, RouteStats]:
    """Requests per "METHOD route" over the window, with their p95."""
    counts, errors = requests_by_route(window)
    out = {}
    for key, count in counts.items():
        if count <= 0:
            continue
        method, _, route = key.partition(" ")
        p95 = histogram_quantile(window, "http_request_duration_seconds", 0.95,
                                 method=method, route=route)
        out[key] = RouteStats(count=count, errors_5xx=errors.get(key, 0.0), p95_ms=_ms(p95))
    return out


def caches(window: Samples) -> dict[str, CacheStats]:
    hits = by_label(window, "cache_hits_total", "cache")
    misses = by_label(window, "cache_misses_total", "cache")
    stale = by_label(window, "cache_stale_hits_total", "cache")
    out = {}
    for name in sorted(set(hits) | set(misses) | set(stale)):
        h, m, s = hits.get(name, 0.0), misses.get(name, 0.0), stale.get(name, 0.0)
        evictions = by_label(window, "cache_evictions_total", "cause", cache=name)
        out[name] = CacheStats(hits=h, misses=m, stale_hits=s, evictions=evictions,
                               hit_ratio=_ratio(h + s, h + s + m))
    return out


def upstream(window: Samples, scrapes: list[Samples]) -> UpstreamStats | None:
    logical = total(window, "elevenlabs_requests_total")
    attempts = total(window, "elevenlabs_attempts_total")
    if not select(window, "elevenlabs_requests_total"):
        return None
    retries = by_label(window, "elevenlabs_retries_total", "reason")
    failed = total(window, "elevenlabs_requests_total", result="failure")
    name = "elevenlabs_upstream_request_duration_seconds"
    count = total(window, f"{name}_count")
    latency = None
    if count > 0:
        latency = Latency(count=int(count),
                          p50=_ms(histogram_quantile(window, name, 0.50)),
                          p95=_ms(histogram_quantile(window, name, 0.95)),
                          p99=_ms(histogram_quantile(window, name, 0.99)))
    return UpstreamStats(
        logical_requests=logical, attempts=attempts, retries=retries,
        retry_rate=_ratio(sum(retries.values()), attempts),
        retry_amplification=_ratio(attempts, logical),
        failures=by_label(window, "elevenlabs_failures_total", "reason"),
        failure_rate=_ratio(failed, logical),
        timeouts=total(window, "elevenlabs_timeouts_total"),
        fallbacks=by_label(window, "elevenlabs_fallbacks_total", "source"),
        latency_ms=latency,
        circuit_open_max=_gauge_max(scrapes, "elevenlabs_circuit_breaker_state"),
    )


def queries(window: Samples) -> dict[str, QueryStats]:
    counts = by_label(window, "db_query_duration_seconds_count", "query")
    errors = by_label(window, "db_query_errors_total", "query")
    return {
        name: QueryStats(count=count, errors=errors.get(name, 0.0),
                         p95_ms=_ms(histogram_quantile(window, "db_query_duration_seconds",
                                                       0.95, query=name)))
        for name, count in sorted(counts.items()) if count > 0
    }


@dataclass(frozen=True)
class Scrape:
    """One scrape of `/metrics`: its text, or why there is none."""

    t: float
    text: str | None
    edge: str | None = None
    """`start` or `end` for the measured window's edges."""
    error: str | None = None


def _gauge(samples: Samples, name: str) -> float | None:
    return total(samples, name) if select(samples, name) else None


def sample(t: float, since: float, phase: str, edge: str | None, d: Samples,
           now: Samples, histograms: dict[str, dict[str, list[int]]] | None = None
           ) -> ServerSample:
    """One row of the series: counter deltas `d` over (since, t], gauges from `now`,
    and `histograms` (`bucket_series`) over the same interval."""
    evictions: dict[str, dict[str, float]] = {}
    for labels, value in select(d, "cache_evictions_total"):
        by = evictions.setdefault(labels.get("cache", ""), {})
        by[labels.get("cause", "")] = by.get(labels.get("cause", ""), 0.0) + value
    requests, errors = requests_by_route(d)
    return ServerSample(
        t=t, since=since, phase=phase, edge=edge, requests=requests,
        errors_5xx={k: v for k, v in errors.items() if v},
        cache_hits=by_label(d, "cache_hits_total", "cache"),
        cache_misses=by_label(d, "cache_misses_total", "cache"),
        cache_stale_hits=by_label(d, "cache_stale_hits_total", "cache"),
        cache_evictions=evictions,
        upstream_requests=total(d, "elevenlabs_requests_total"),
        upstream_attempts=total(d, "elevenlabs_attempts_total"),
        upstream_retries=by_label(d, "elevenlabs_retries_total", "reason"),
        upstream_failures=by_label(d, "elevenlabs_failures_total", "reason"),
        upstream_fallbacks=by_label(d, "elevenlabs_fallbacks_total", "source"),
        breaker_state=_gauge(now, "elevenlabs_circuit_breaker_state"),
        pool_size=_gauge(now, "db_pool_size"), pool_in_use=_gauge(now, "db_pool_in_use"),
        pool_waiting=_gauge(now, "db_pool_waiting"),
        kpi_staleness_s=_gauge(now, "kpi_view_staleness_seconds"),
        histograms=histograms or {})


EDGE_BAND_S = 0.25
"""A periodic scrape this close to a window-edge scrape is left out of the series: the
two were taken by different processes, so their order within the band is unknown, and
a pair in the wrong order would look like a counter reset."""


def ordered(scrapes: list[tuple[Scrape, Samples]]) -> list[tuple[Scrape, Samples]]:
    """The scrapes in time order, without periodic ones inside an edge's band: the one
    ordering both the series and the window's totals are computed over."""
    edges = [s.t for s, _ in scrapes if s.edge is not None]
    kept = [(s, v) for s, v in scrapes
            if s.edge is not None or all(abs(s.t - e) > EDGE_BAND_S for e in edges)]
    return sorted(kept, key=lambda pair: (pair[0].t, pair[0].edge != "start"))


def series(scrapes: list[tuple[Scrape, Samples]], start: float,
           end: float) -> list[ServerSample]:
    """A row per answered scrape after the first, in time order, phased by the window."""
    return _series(ordered(scrapes), start, end)[0]


def _series(steps: list[tuple[Scrape, Samples]], start: float, end: float,
            scanned: dict[int, BucketScan] | None = None
            ) -> tuple[list[ServerSample], dict[str, list[float]]]:
    """The rows of ordered scrapes, and the bounds their histogram counts refer to.

    `scanned`: the scrapes' buckets when already read, by `id` of the scrape."""
    scanned = scanned or {}
    scans = [scanned[id(s)] if id(s) in scanned else scan_buckets(s.text or "")
             for s, _ in steps]
    bounds = bucket_bounds(scans)
    histograms = bucket_series(scans, bounds)
    rows = []
    for n, ((prev, before), (cur, now)) in enumerate(pairwise(steps)):
        phase = "before" if cur.t <= start else "measured" if cur.t <= end else "after"
        rows.append(sample(cur.t, prev.t, phase, cur.edge, delta(before, now), now,
                           histograms[n]))
    return rows, bounds


def target_settings(samples: Samples) -> TargetSettings | None:
    """The service's effective settings from its `target_settings_info` metric."""
    found = select(samples, "target_settings_info")
    if not found:
        return None
    labels = max(found, key=lambda lv: lv[1])[0]
    toggles = {k.removeprefix("toggle_"): v == "true" for k, v in labels.items()
               if k.startswith("toggle_")}
    rest = {k: v for k, v in sorted(labels.items())
            if not k.startswith("toggle_") and k not in ("profile", "version")}
    return TargetSettings(profile=labels.get("profile"), version=labels.get("version"),
                          toggles=dict(sorted(toggles.items())), settings=rest)


def summarize(start: Scrape, end: Scrape, during: list[Scrape]) -> ServerSide:
    """The server-side section of a result from the window's edge scrapes and the rest.

    `during` holds every periodic scrape attempt of the run (answered or not);
    gauge peaks are taken over the measured window's scrapes."""
    first, last = parse(start.text or ""), parse(end.text or "")
    answered, scanned = [], {}
    for s in during:
        if s.text is not None:
            samples, scanned[id(s)] = scan(s.text, SERIES_METRICS)
            answered.append((s, samples))
    timed = ordered([(start, first), *answered, (end, last)])
    inside = [samples for s, samples in timed if s.edge is None and start.t < s.t < end.t]
    scrapes = [first, *inside, last]
    window = stepwise_delta(first, last, inside)
    acquire = histogram_quantile(window, "db_pool_acquire_seconds", 0.95)
    pool = PoolStats(
        max_size=_gauge_max(scrapes, "db_pool_max_size"),
        size_max=_gauge_max(scrapes, "db_pool_size"),
        in_use_max=_gauge_max(scrapes, "db_pool_in_use"),
        waiting_max=_gauge_max(scrapes, "db_pool_waiting"),
        acquire_p95_ms=_ms(acquire),
        acquire_timeouts=total(window, "db_pool_acquire_timeouts_total"),
    )
    kpi = {
        "refreshes": total(window, "kpi_view_refreshes_total", outcome="ok"),
        "staleness_max_s": _gauge_max(scrapes, "kpi_view_staleness_seconds"),
        "change_to_visible_p95_s": histogram_quantile(window,
                                                      "kpi_view_change_to_visible_seconds", 0.95),
    }
    rows, bounds = _series(timed, start.t, end.t, scanned)
    return ServerSide(scrapes=len(timed), routes=routes(window), caches=caches(window),
                      upstream=upstream(window, scrapes), db_pool=pool, queries=queries(window),
                      kpi_view=kpi, series=rows, histogram_bounds=bounds,
                      failed_scrapes=[FailedScrape(t=s.t, error=s.error or "no answer")
                                      for s in during if s.text is None])
