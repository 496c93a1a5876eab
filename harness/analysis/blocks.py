"""Per-window HdrHistograms as a block matrix: what the gate's bootstrap resamples.

A run's latency is a list of one-second windows, each an HdrHistogram (in the
run's interval log). Requests inside a run are autocorrelated: a slow second
is followed by slow seconds (GC, a checkpoint, a noisy neighbour, a cache
refill), so the gate never treats requests as independent samples. Its unit
of resampling is a *block* of `block_s` consecutive windows (default 5 s),
long enough to keep most of that short-range dependence inside the block.

`window_counts` reads each window's HDR buckets (sparse: the non-zero counts
of the histogram's own counts array, read without copying the array);
`block_pair` lays two runs (or two sets of rounds) on one bucket grid, the
union of the buckets either side used, and sums windows into non-overlapping
blocks. A trailing partial block is dropped and counted in `Blocks.dropped`
(its windows still count in the point estimate, `Blocks.total`).

What blocks capture, measured on `tests/sim.py` (drift AR(1), rho 0.9 per
second, plus 3% burst seconds): the bootstrap's SE of the p95 and p99 ratio
matches their true A/A spread (bursts are short), while the p50's is ~20-28%
low (0.049 vs 0.060 at 60 s; 0.0155 vs 0.0216 at 600 s): a drift with a
~19 s correlation time outlives 5 s blocks, and 15 s blocks recover little
(0.0174 at 600 s). With the policy's tolerances the gate's false-alarm rate
stays far inside the misrate (0 of 500 A/A gates); a tight p50 tolerance on a
drifting machine is what `harness calibrate` is for.

Quantiles read from these matrices are exactly HdrHistogram's
`get_value_at_percentile` (same target-count rounding, same bucket edges),
so a figure the gate shows equals the one in `result.json`.

Pure: numpy and `harness.hdr` only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from harness import hdr

__all__ = [
    "DEFAULT_BLOCK_S",
    "Blocks",
    "Grid",
    "WindowCounts",
    "block_pair",
    "bucket_values",
    "quantiles",
    "window_counts",
]

DEFAULT_BLOCK_S = 5

HistogramLike = hdr.HdrHistogram | str | bytes | None


@dataclass(frozen=True)
class Layout:
    """The bucket layout of an HdrHistogram (all harness histograms share one)."""

    counts_len: int
    sub_bucket_half_count_magnitude: int
    sub_bucket_half_count: int
    unit_magnitude: int

    @classmethod
    def of(cls, h: hdr.HdrHistogram) -> Layout:
        return cls(h.counts_len, h.sub_bucket_half_count_magnitude, h.sub_bucket_half_count,
                   h.unit_magnitude)


@lru_cache(maxsize=8)
def bucket_values(layout: Layout) -> tuple[np.ndarray, np.ndarray]:
    """(lowest, highest) equivalent value of every counts index, vectorized.

    The same arithmetic as `HdrHistogram.get_value_from_index` followed by
    `get_lowest_equivalent_value` / `get_highest_equivalent_value` (a test
    compares every index with those methods)."""
    i = np.arange(layout.counts_len, dtype=np.int64)
    bucket = (i >> layout.sub_bucket_half_count_magnitude) - 1
    sub = (i & (layout.sub_bucket_half_count - 1)) + layout.sub_bucket_half_count
    first = bucket < 0
    sub = np.where(first, sub - layout.sub_bucket_half_count, sub)
    bucket = np.where(first, 0, bucket)
    lowest = sub << (bucket + layout.unit_magnitude)
    highest = lowest + (np.int64(1) << (bucket + layout.unit_magnitude)) - 1
    lowest.setflags(write=False)
    highest.setflags(write=False)
    return lowest, highest


@dataclass(frozen=True)
class WindowCounts:
    """One run's windows, sparse: for window w, `index[w]` (counts indices) and `count[w]`."""

    layout: Layout
    index: tuple[np.ndarray, ...]
    count: tuple[np.ndarray, ...]

    def __len__(self) -> int:
        return len(self.index)

    @property
    def total(self) -> int:
        return int(sum(int(c.sum()) for c in self.count))


def _histogram(h: HistogramLike) -> hdr.HdrHistogram | None:
    if h is None or (isinstance(h, (str, bytes)) and len(h) == 0):
        return None
    if isinstance(h, (str, bytes)):
        return hdr.decode(h)
    return h


def window_counts(histograms: Iterable[HistogramLike]) -> WindowCounts:
    """The non-zero HDR buckets of each window, in order (one per measured second).

    `histograms` holds HdrHistograms, their `hdr.encode` strings, or None/"" for
    an empty window. The counts array is read in place (`np.ctypeslib.as_array`
    on the histogram's ctypes array); every histogram must have the harness's
    one layout (`hdr.new_histogram`), else ValueError."""
    layout: Layout | None = None
    index: list[np.ndarray] = []
    count: list[np.ndarray] = []
    empty_i = np.zeros(0, dtype=np.int64)
    empty_c = np.zeros(0, dtype=np.float64)
    for raw in histograms:
        h = _histogram(raw)
        if h is None or h.get_total_count() == 0:
            index.append(empty_i)
            count.append(empty_c)
            continue
        this = Layout.of(h)
        if layout is None:
            layout = this
        elif this != layout:
            raise ValueError(f"histograms of different layouts: {this} vs {layout}")
        arr = np.ctypeslib.as_array(h.counts)
        nz = np.flatnonzero(arr)
        index.append(nz.astype(np.int64, copy=False))
        count.append(arr[nz].astype(np.float64))
    if layout is None:
        layout = Layout.of(hdr.new_histogram())
    return WindowCounts(layout, tuple(index), tuple(count))


@dataclass(frozen=True)
class Grid:
    """The buckets two sides share: counts indices and their HDR values (µs)."""

    index: np.ndarray
    lowest: np.ndarray
    highest: np.ndarray

    def __len__(self) -> int:
        return len(self.index)


@dataclass(frozen=True)
class Blocks:
    """One side of a comparison: counts per block and bucket, on a shared grid.

    `counts[j, k]`: requests of block j (block_s consecutive windows of one run)
    in bucket `grid.index[k]`. `total` holds every window given, dropped ones
    included: the point estimate uses it. `dropped` counts the windows of
    trailing partial blocks (summed over rounds)."""

    counts: np.ndarray
    total: np.ndarray
    grid: Grid
    block_s: int
    windows: int
    dropped: int
    rounds: int = 1

    @property
    def n_blocks(self) -> int:
        return self.counts.shape[0]

    @property
    def requests(self) -> int:
        return int(self.total.sum())


def _as_runs(side: WindowCounts | Sequence[WindowCounts]) -> list[WindowCounts]:
    return [side] if isinstance(side, WindowCounts) else list(side)


def _blocks(runs: list[WindowCounts], lookup: np.ndarray, grid: Grid, block_s: int) -> Blocks:
    k = len(grid)
    rows: list[np.ndarray] = []
    total = np.zeros(k, dtype=np.float64)
    windows = dropped = 0
    for run in runs:
        n = len(run) // block_s
        windows += len(run)
        dropped += len(run) - n * block_s
        if len(run) == 0:
            continue
        sizes = np.fromiter((len(i) for i in run.index), dtype=np.int64, count=len(run))
        idx = np.concatenate(run.index) if sizes.sum() else np.zeros(0, dtype=np.int64)
        cnt = np.concatenate(run.count) if sizes.sum() else np.zeros(0)
        pos = lookup[idx]
        window = np.repeat(np.arange(len(run)), sizes)
        total += np.bincount(pos, weights=cnt, minlength=k)
        keep = window < n * block_s
        flat = (window[keep] // block_s) * k + pos[keep]
        rows.append(np.bincount(flat, weights=cnt[keep], minlength=n * k).reshape(n, k))
    counts = np.concatenate(rows) if rows else np.zeros((0, k))
    return Blocks(counts, total, grid, block_s, windows, dropped, len(runs))


def block_pair(baseline: WindowCounts | Sequence[WindowCounts],
               current: WindowCounts | Sequence[WindowCounts],
               block_s: int = DEFAULT_BLOCK_S) -> tuple[Blocks, Blocks]:
    """Both sides as blocks of `block_s` consecutive windows on one shared bucket grid.

    Each side is one run's `WindowCounts` or a list of rounds (runs); blocks
    never span two runs, and each run's trailing partial block is dropped."""
    if block_s < 1:
        raise ValueError("block_s must be at least 1")
    base, cur = _as_runs(baseline), _as_runs(current)
    layouts = {r.layout for r in base + cur}
    if len(layouts) != 1:
        raise ValueError("baseline and current histograms have different layouts")
    layout = layouts.pop()
    used = np.zeros(layout.counts_len, dtype=bool)
    for run in base + cur:
        for i in run.index:
            used[i] = True
    index = np.flatnonzero(used)
    lowest, highest = bucket_values(layout)
    grid = Grid(index, lowest[index], highest[index])
    lookup = np.full(layout.counts_len, -1, dtype=np.int64)
    lookup[index] = np.arange(len(index))
    return _blocks(base, lookup, grid, block_s), _blocks(cur, lookup, grid, block_s)


def target_counts(totals: np.ndarray, percentile: float) -> np.ndarray:
    """HdrHistogram's rank of a percentile: max(1, int(p * total / 100 + 0.5))."""
    p = min(float(percentile), 100.0)
    return np.maximum(np.floor(p * totals / 100 + 0.5), 1.0)


def quantiles(counts: np.ndarray, grid: Grid, percentiles: Sequence[float]) -> np.ndarray:
    """HdrHistogram's `get_value_at_percentile` of a counts vector (or of each row).

    Exact: the first bucket whose cumulative count reaches the target rank,
    reported as its highest equivalent value (its lowest for p = 0). An empty
    histogram gives 0, as HdrHistogram does."""
    c = np.atleast_2d(np.asarray(counts, dtype=np.float64))
    cum = np.cumsum(c, axis=1)
    totals = cum[:, -1] if cum.shape[1] else np.zeros(len(cum))
    out = np.zeros((len(percentiles), len(c)), dtype=np.float64)
    for n, p in enumerate(percentiles):
        target = target_counts(totals, p)
        k = (cum < target[:, None]).sum(axis=1)
        ok = totals > 0
        values = grid.highest if p else grid.lowest
        out[n, ok] = values[k[ok]]
    return out[:, 0] if np.ndim(counts) == 1 else out
