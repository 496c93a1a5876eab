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

from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 3_600 * 1_000_000  # one hour
SIGNIFICANT_FIGURES = 3
PERCENTILES = {"p50": 50.0, "p90": 90.0, "p95": 95.0, "p99": 99.0, "p999": 99.9}

__all__ = ["HdrHistogram", "new_histogram", "record", "encode", "decode", "merge",
           "summary", "clamp_us", "LOWEST_US", "HIGHEST_US", "SIGNIFICANT_FIGURES",
           "PERCENTILES"]


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
    v = int(round(value_us))
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
    except Exception as exc:  # noqa: BLE001 - hdrh raises a zoo (TypeError, zlib.error, ...)
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
    out["mean"] = h.get_mean_value() / 1000.0
    for key, pct in PERCENTILES.items():
        out[key] = h.get_value_at_percentile(pct) / 1000.0
    out["max"] = h.get_max_value() / 1000.0
    return out
