"""Small helpers around `hdrhistogram` (HdrHistogram, the `hdrh` module).

Every latency histogram of the harness has the same shape, so histograms from
any process, window or run can be added exactly:

* values are **microseconds**, tracked from 1 µs to 1 hour, with 3
  significant digits (a recorded value is within 0.1% of the true one);
* values outside that range are clamped into it (an HdrHistogram silently
  drops values above its highest trackable value, which would lose requests);
* the wire format is HdrHistogram's own compressed V2 encoding, base64
  (`encode`/`decode`), readable by every HdrHistogram implementation
  (Java, Go, Rust, JS, `hdr-plot`...).

Pure: no I/O, no Locust, no gevent, so both the Locust plugin and the
statistics module can use it.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable

import numpy as np
from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 3_600 * 1_000_000  # one hour
SIGNIFICANT_FIGURES = 3
PERCENTILES = {"p50": 50.0, "p90": 90.0, "p95": 95.0, "p99": 99.0, "p999": 99.9}

__all__ = [
    "HIGHEST_US",
    "LOWEST_US",
    "PERCENTILES",
    "SIGNIFICANT_FIGURES",
    "HdrHistogram",
    "clamp_us",
    "decode",
    "encode",
    "merge",
    "new_histogram",
    "record",
    "summary",
]


def uncycle(h: HdrHistogram) -> HdrHistogram:
    """Break the histogram <-> encoder reference cycle.

    `HdrHistogram` keeps an encoder that points back at it, so every histogram
    (a ~190 KB counts array at these settings) is freed only by Python's rare
    full garbage collection. A Locust master decoding a few per second grew by
    ~50 MB a minute that way in a 10-minute soak. With a weak back-reference
    the histogram is freed as soon as its last user drops it.
    """
    encoder = getattr(h, "encoder", None)
    if encoder is not None and getattr(encoder, "histogram", None) is h:
        encoder.histogram = weakref.proxy(h)
    return h


def new_histogram() -> HdrHistogram:
    """An empty latency histogram: microseconds, 1 µs .. 1 hour, 3 significant digits."""
    return uncycle(HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_FIGURES))


def clamp_us(value_us: float) -> int:
    """A latency in µs as the integer the histogram can hold (clamped to 1 µs .. 1 h)."""
    v = round(value_us)
    if v < LOWEST_US:
        return LOWEST_US
    if v > HIGHEST_US:
        return HIGHEST_US
    return v


def record(h: HdrHistogram, value_us: float, count: int = 1) -> None:
    """Record a latency in microseconds, clamped into the trackable range."""
    h.record_value(clamp_us(value_us), count)


def encode(h: HdrHistogram) -> str:
    """HdrHistogram's compressed V2 encoding, base64, as a `str`."""
    data = h.encode()
    return data.decode("ascii") if isinstance(data, bytes) else data


def decode(s: str | bytes) -> HdrHistogram:
    """The histogram of an `encode` string (raises `ValueError` on garbage)."""
    if isinstance(s, str):
        s = s.encode("ascii")
    try:
        return uncycle(HdrHistogram.decode(s))
    except Exception as exc:  # hdrh raises a zoo (TypeError, zlib.error, ...)
        raise ValueError(f"not an encoded HdrHistogram: {exc}") from exc


def merge(histograms: Iterable[HdrHistogram | str | bytes]) -> HdrHistogram:
    """A new histogram holding the sum of the given ones (histograms or encodings).

    Exact: counts add bucket by bucket. The minimum is tracked here because
    `HdrHistogram.add` takes `min()` with an empty histogram's minimum of 0.
    """
    out = new_histogram()
    mins: list[int] = []
    for h in histograms:
        if isinstance(h, (str, bytes)):
            h = decode(h)
        if h.get_total_count() == 0:
            continue
        mins.append(h.get_min_value())
        out.add(h)
    if mins:
        out.min_value = min(mins)
    return out


def add_into(target: HdrHistogram, other: HdrHistogram) -> None:
    """`target += other`, keeping `target`'s minimum right (see `merge`)."""
    if other.get_total_count() == 0:
        return
    if target.get_total_count() == 0:
        lowest = other.get_min_value()
    else:
        lowest = min(target.get_min_value(), other.get_min_value())
    target.add(other)
    target.min_value = lowest


class _Layout:
    """Every bucket's value range, as numpy arrays, for one histogram shape.

    hdrh answers `get_value_at_percentile` and `get_mean_value` by walking its
    ~23,000 buckets in Python (milliseconds per call); the time series of a long
    run asks that of thousands of windows. The same answers come from a cumulative
    sum and a search over these arrays, exactly (a test compares them with hdrh)."""

    def __init__(self, h: HdrHistogram) -> None:
        index = np.arange(h.counts_len, dtype=np.int64)
        bucket = (index >> h.sub_bucket_half_count_magnitude) - 1
        sub = (index & (h.sub_bucket_half_count - 1)) + h.sub_bucket_half_count
        first = bucket < 0
        sub = np.where(first, sub - h.sub_bucket_half_count, sub)
        bucket = np.where(first, 0, bucket)
        self.lowest = sub << (bucket + h.unit_magnitude)
        # hdrh's get_highest_equivalent_value: the range of the bucket the value is in
        size = np.int64(1) << (h.unit_magnitude + bucket + (sub >= h.sub_bucket_count))
        self.highest = self.lowest + size - 1
        self.median = self.lowest + (size >> 1)


_LAYOUTS: dict[tuple[int, int, int], _Layout] = {}


def _layout(h: HdrHistogram) -> _Layout:
    key = (h.counts_len, h.sub_bucket_half_count_magnitude, h.unit_magnitude)
    layout = _LAYOUTS.get(key)
    if layout is None:
        layout = _LAYOUTS[key] = _Layout(h)
    return layout


def counts(h: HdrHistogram) -> np.ndarray:
    """The histogram's bucket counts as a numpy view (no copy)."""
    return np.ctypeslib.as_array(h.counts)


def values_at_percentiles(h: HdrHistogram, percentiles: Iterable[float]) -> list[int]:
    """`h.get_value_at_percentile(p)` for each p, exactly, in one vectorized pass."""
    total = h.get_total_count()
    pcts = list(percentiles)
    if total == 0:
        return [0 for _ in pcts]
    lo, hi = _used(h)
    cum = np.cumsum(counts(h)[lo:hi], dtype=np.int64)
    if not len(cum) or cum[-1] != total:  # min/max tracking off (hdrh's add): use them all
        lo, cum = 0, np.cumsum(counts(h), dtype=np.int64)
    layout = _layout(h)
    out = []
    for p in pcts:
        target = max(int(min(p, 100.0) * total / 100 + 0.5), 1)  # hdrh's target count
        index = lo + int(np.searchsorted(cum, target, side="left"))
        out.append(int(layout.highest[index] if p else layout.lowest[index]))
    return out


def _used(h: HdrHistogram) -> tuple[int, int]:
    """The slice of the counts array between the smallest and largest recorded value."""
    return (h.get_counts_array_index(h.get_min_value()),
            h.get_counts_array_index(h.get_max_value()) + 1)


def mean_value(h: HdrHistogram) -> float:
    """`h.get_mean_value()`, exactly: each bucket counted at its median equivalent value."""
    total = h.get_total_count()
    if total == 0:
        return 0.0
    lo, hi = _used(h)
    if int(counts(h)[lo:hi].sum()) != total:  # min/max tracking off: use every bucket
        lo, hi = 0, h.counts_len
    c = counts(h)[lo:hi].astype(np.float64)
    return float(np.dot(c, _layout(h).median[lo:hi].astype(np.float64)) / total)


def summary(h: HdrHistogram) -> dict[str, float | int | None]:
    """Count, then min/mean/p50/p90/p95/p99/p999/max in milliseconds (None when empty).

    The keys are the field names of `harness.model.result.Latency`, the one
    shape a latency summary has anywhere in the harness."""
    count = h.get_total_count()
    out: dict[str, float | int | None] = {"count": count}
    if count == 0:
        out.update({"min": None, "mean": None})
        out.update({k: None for k in PERCENTILES})
        out["max"] = None
        return out
    out["min"] = h.get_min_value() / 1000.0
    out["mean"] = mean_value(h) / 1000.0
    for key, value in zip(PERCENTILES, values_at_percentiles(h, PERCENTILES.values()),
                          strict=True):
        out[key] = value / 1000.0
    out["max"] = h.get_max_value() / 1000.0
    return out
