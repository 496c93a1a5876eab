"""Prometheus's text exposition read into numbers. Pure: text in, samples out.

Two readers: `parse`, prometheus-client's own parser over a whole scrape, and
`scan`, which reads only the families asked for (found by their `# TYPE` lines,
as prometheus-client always writes one) and the buckets of `HISTOGRAMS`: a
periodic scrape is mostly histogram buckets, and the full parser on every one
made collecting a 10-minute run take half a minute. Then the arithmetic the
window needs: counter increases that know resets (`delta`, `stepwise_delta`),
label selection and sums, and PromQL's `histogram_quantile`, interpolated
inside the buckets exactly as Prometheus does. What the numbers mean for a run
is `harness.analysis.server_metrics`'s.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise

import numpy as np
from prometheus_client.parser import text_string_to_metric_families

Key = tuple[str, tuple[tuple[str, str], ...]]
Samples = dict[Key, float]


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
        for before, after in pairwise(steps):
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
