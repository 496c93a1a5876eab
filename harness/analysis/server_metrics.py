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
(`HISTOGRAMS`: named queries, pool acquire, KPI view freshness, ElevenLabs
attempts), by a reader of their own (`scan`: only those families, found by
their `# TYPE` lines) rather than the full parser. The buckets are kept per
series row as observations per bucket (`bucket_series`): what
`harness.analysis.buckets` resamples for the gate's p95 checks.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from harness.model.result import (
    CacheStats,
    FailedScrape,
    Latency,
    PoolStats,
    QueryStats,
    RouteStats,
    ServerSample,
    ServerSide,
    TargetSettings,
    UpstreamStats,
)

Key = tuple[str, tuple[tuple[str, str], ...]]
Samples = dict[Key, float]


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


HISTOGRAMS: dict[str, str | None] = {
    "db_query_duration_seconds": "query",
    "db_pool_acquire_seconds": None,
    "kpi_view_change_to_visible_seconds": None,
    "elevenlabs_upstream_request_duration_seconds": "outcome",
}
"""The histograms whose buckets every series row keeps (the gate's p95 checks of named
queries, pool waits, KPI view freshness and ElevenLabs attempts), each with the label
its series are told apart by (None: one series; other labels are summed)."""

Buckets = dict[str, dict[str, dict[str, float]]]
"""histogram -> series label value ("" when unlabelled) -> `le` text -> cumulative count."""

SeriesKey = tuple[str, str, str]
"""(histogram, series label value, `le` text) of one bucket sample."""

_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
_ESCAPES = re.compile(r"\\(.)")
_HEAD = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?")
_BUCKET_NAMES = {f"{name}_bucket": name for name in HISTOGRAMS}


def _labels(text: str) -> dict[str, str]:
    if "\\" not in text:  # no escapes: values hold no quote, so '",' splits them
        parts = text.rstrip(",")[:-1].split('",') if text else []
        return dict(part.split('="', 1) for part in parts if '="' in part)
    return {k: _ESCAPES.sub(lambda m: "\n" if m.group(1) == "n" else m.group(1), v)
            for k, v in _LABEL.findall(text)}


@lru_cache(maxsize=16384)
def _head(head: str) -> Key | None:
    """(sample name, sorted labels) of a sample line's `name{labels}`; None: not one.

    Cached: the same heads recur in every scrape of a run."""
    m = _HEAD.fullmatch(head)
    if m is None:
        return None
    try:
        labels = _labels(m.group(2) or "")
    except ValueError:
        return None
    return m.group(1), tuple(sorted(labels.items()))


@lru_cache(maxsize=16384)
def _bucket_of(key: Key) -> SeriesKey | None:
    name = _BUCKET_NAMES.get(key[0])
    labels = dict(key[1])
    if name is None or "le" not in labels:
        return None
    by = HISTOGRAMS[name]
    return name, (labels.get(by, "") if by else ""), labels["le"]


_SUFFIXES = ("_total", "_count", "_sum", "_bucket", "_created", "_info")


def _families(text: str) -> dict[str, tuple[int, int]]:
    """Family name -> where its sample lines lie in the text: after its `# TYPE` line,
    up to the next comment line (the text format keeps a family's lines together)."""
    out: dict[str, tuple[int, int]] = {}
    i = 0
    while (j := text.find("# TYPE ", i)) >= 0:
        if j and text[j - 1] != "\n":
            i = j + 7
            continue
        eol = text.find("\n", j)
        if eol < 0:
            break
        name = text[j + 7:eol].split(" ", 1)[0]
        end = text.find("\n#", eol)
        out.setdefault(name, (eol + 1, len(text) if end < 0 else end))
        i = eol
    return out


def _family_lines(text: str, names: Iterable[str]) -> list[str]:
    """The lines of the metric families holding samples of `names` (a family is found
    by its `# TYPE` line, as prometheus_client always writes one): a few string
    searches instead of looking at every line of the exposition."""
    families = _families(text)
    spans = set()
    for name in names:
        for family in (name, *(name.removesuffix(s) for s in _SUFFIXES if name.endswith(s))):
            if family in families:
                spans.add(families[family])
                break
    lines: list[str] = []
    for start, end in sorted(spans):
        lines += text[start:end].split("\n")
    return lines


@dataclass(frozen=True)
class BucketScan:
    """The `HISTOGRAMS` bucket samples of one exposition: a key and a value each."""

    keys: tuple[SeriesKey, ...]
    values: np.ndarray


def scan(text: str, names: frozenset[str] = frozenset()) -> tuple[Samples, BucketScan]:
    """The samples of `names` (as `parse` gives them) and the cumulative `_bucket`
    samples of `HISTOGRAMS`, read from their families only.

    What the periodic scrapes need, without the full parser: a sample line is
    `name{labels} value [timestamp]` as the text format defines it, label values
    unescaped, heads cached; a line it cannot read is left out."""
    samples: Samples = {}
    keys: list[SeriesKey] = []
    values: list[float] = []
    for line in _family_lines(text, [*names, *_BUCKET_NAMES]):
        if not line or line[0] == "#":
            continue
        head, _, value = line.rpartition(" ")
        key = _head(head)
        if key is None:  # a timestamp after the value
            head, _, value = head.rpartition(" ")
            key = _head(head)
            if key is None:
                continue
        try:
            number = float(value)
        except ValueError:
            continue
        if key[0] in names:
            samples[key] = number
        elif (bucket := _bucket_of(key)) is not None:
            keys.append(bucket)
            values.append(number)
    return samples, BucketScan(tuple(keys), np.array(values, dtype=np.float64))


def scan_buckets(text: str) -> BucketScan:
    """The cumulative `_bucket` samples of `HISTOGRAMS` in an exposition, nothing else."""
    return scan(text)[1]


def parse_buckets(text: str) -> Buckets:
    """`scan_buckets` as nested dicts (series of other labels summed)."""
    out: Buckets = {}
    found = scan_buckets(text)
    for (name, label, le), value in zip(found.keys, found.values.tolist(), strict=True):
        series = out.setdefault(name, {}).setdefault(label, {})
        series[le] = series.get(le, 0.0) + value
    return out


def _le(text: str) -> float:
    try:
        return float(text)  # "+Inf" too
    except ValueError:
        return math.nan


def bucket_bounds(scans: Iterable[BucketScan]) -> dict[str, list[float]]:
    """Histogram -> the finite `le` bounds any scrape showed, ascending."""
    seen: dict[str, set[float]] = {}
    for key in {k for scan in scans for k in scan.keys}:
        x = _le(key[2])
        if math.isfinite(x):
            seen.setdefault(key[0], set()).add(x)
        else:
            seen.setdefault(key[0], set())
    return {name: sorted(seen[name]) for name in sorted(seen)}


def bucket_series(scans: list[BucketScan], bounds: dict[str, list[float]]
                  ) -> list[dict[str, dict[str, list[int]]]]:
    """Observations per bucket from each scrape to the next (one entry per step):
    histogram -> label -> counts, as `ServerSample.histograms` stores them.

    Each cumulative bucket's increase is taken like a counter's (`delta`: one that
    went down counts from zero), then differenced across `le` into per-bucket counts
    (the last one past the highest bound, Prometheus' +Inf). A bound a series lacks
    takes the count below it (cumulative counts are made non-decreasing in `le`, as
    PromQL does). Trailing empty buckets are cut off and series without observations
    left out, so a quiet step costs nothing. Vectorized: one matrix per histogram,
    scrapes x series x buckets."""
    steps: list[dict[str, dict[str, list[int]]]] = [{} for _ in scans[1:]]
    if not scans:
        return steps
    unique = {k for scan in scans for k in scan.keys}
    labels = {name: sorted({lab for n, lab, _ in unique if n == name}) for name in bounds}
    offset, columns, layout = 0, {}, {}
    for name, edges in bounds.items():
        k = len(edges) + 1
        where = {lab: i for i, lab in enumerate(labels[name])}
        for key in unique:
            if key[0] != name:
                continue
            x = _le(key[2])
            i = k - 1 if x == math.inf else edges.index(x) if x in edges else None
            if i is not None:
                columns[key] = offset + where[key[1]] * k + i
        layout[name] = (offset, len(labels[name]), k)
        offset += len(labels[name]) * k
    cum = np.zeros((len(scans), offset))
    seen = np.zeros((len(scans), offset), dtype=bool)
    for n, scan in enumerate(scans):
        cols = np.fromiter((columns.get(k, -1) for k in scan.keys), np.int64, len(scan.keys))
        ok = cols >= 0
        np.add.at(cum[n], cols[ok], scan.values[ok])  # other labels summed
        seen[n, cols[ok]] = True
    for name, (start, n_labels, k) in layout.items():
        if not n_labels:
            continue
        block = cum[:, start:start + n_labels * k].reshape(len(scans), n_labels, k)
        present = seen[:, start:start + n_labels * k].reshape(len(scans), n_labels, k).any(2)
        filled = np.maximum.accumulate(block, axis=2)
        before, after = filled[:-1], filled[1:]
        grown = np.where(after >= before, after - before, after)  # a reset: from zero
        below = np.concatenate([np.zeros((*grown.shape[:2], 1)),
                                np.maximum.accumulate(grown, axis=2)[..., :-1]], axis=2)
        counts = np.maximum(np.rint(grown - below), 0).astype(np.int64)
        nonzero = counts > 0
        last = np.where(nonzero.any(axis=2), k - np.argmax(nonzero[..., ::-1], axis=2), 0)
        last[~present[1:]] = 0  # a series gone from the later scrape: nothing
        for row, j in zip(*np.nonzero(last), strict=True):
            found = steps[row].setdefault(name, {})
            found[labels[name][j]] = counts[row, j, :last[row, j]].tolist()
    return steps


def parse(text: str, only: frozenset[str] | None = None) -> Samples:
    """Flatten an exposition into {(sample name, sorted labels): value}.

    `only`: keep just these sample names, read by `scan` from their families alone
    (the full parser on every periodic scrape made a record's build take seconds)."""
    if only is not None:
        return scan(text, only)[0]
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = float(s.value)
    return out


def delta(start: Samples, end: Samples) -> Samples:
    """Counter/histogram increase over the window (reset-aware)."""
    out: Samples = {}
    for key, value in end.items():
        before = start.get(key, 0.0)
        out[key] = value - before if value >= before else value
    return out


def _is_counter(name: str) -> bool:
    return name.endswith(("_total", "_count", "_sum"))


def stepwise_delta(first: Samples, last: Samples, between: list[Samples]) -> Samples:
    """The window's increase: the edge scrapes' delta, except that counters the periodic
    scrapes also hold are summed scrape to scrape, so a reset inside the window (a
    restarted worker) loses only what it lost, not the counts before it."""
    window = delta(first, last)
    if not between:
        return window
    steps = [first, *between, last]
    kept = {key for key in last if _is_counter(key[0]) and all(key in s for s in between)}
    for key in kept:
        total_ = 0.0
        for before, after in zip(steps, steps[1:], strict=False):
            b, a = before.get(key, 0.0), after.get(key, 0.0)
            total_ += a - b if a >= b else a
        window[key] = total_
    return window


def select(samples: Samples, name: str, **match: str) -> list[tuple[dict[str, str], float]]:
    """Samples of one name whose labels include `match`."""
    found = []
    for (n, labels), value in samples.items():
        if n != name:
            continue
        d = dict(labels)
        if all(d.get(k) == v for k, v in match.items()):
            found.append((d, value))
    return found


def total(samples: Samples, name: str, **match: str) -> float:
    return sum(v for _, v in select(samples, name, **match))


def by_label(samples: Samples, name: str, label: str, **match: str) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for labels, value in select(samples, name, **match):
        out[labels.get(label, "")] += value
    return dict(out)


def histogram_quantile(samples: Samples, name: str, q: float, **match: str) -> float | None:
    """PromQL's histogram_quantile over `<name>_bucket`, summed across other labels."""
    buckets: dict[float, float] = defaultdict(float)
    for labels, value in select(samples, f"{name}_bucket", **match):
        buckets[float(labels["le"])] += value
    if not buckets:
        return None
    edges = sorted(buckets)
    count = buckets[edges[-1]]
    if count <= 0:
        return None
    rank = q * count
    lower_edge, lower_count = 0.0, 0.0
    for edge in edges:
        cumulative = buckets[edge]
        if cumulative >= rank:
            if math.isinf(edge):
                return lower_edge  # above the last finite bucket: its edge is all we know
            width = cumulative - lower_count
            fraction = (rank - lower_count) / width if width > 0 else 1.0
            return lower_edge + (edge - lower_edge) * fraction
        lower_edge, lower_count = edge, cumulative
    return lower_edge


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
    for n, ((prev, before), (cur, now)) in enumerate(zip(steps, steps[1:], strict=False)):
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
