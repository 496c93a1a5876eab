"""Block bootstrap of a quantile from Prometheus histogram buckets. Pure numpy.

The service's own histograms (named query durations, pool acquire waits, KPI
view freshness, ElevenLabs attempts) reach the harness as Prometheus buckets,
not HDR: a handful of fixed upper bounds (`le`) and a count per bucket. The
series keeps, per 2 s scrape, the observations each bucket gained
(`ServerSample.histograms`); this module turns those rows into blocks and
resamples them the way `harness.analysis.stats` resamples windows:

* **Blocks.** Consecutive rows of one run are summed into non-overlapping
  blocks (`block_rows`; the gate uses `round(block_s / 2 s)` rows a block);
  a trailing partial block is dropped from the resampling but counted in the
  point estimate, as `harness.analysis.blocks` does for windows. Blocks never
  straddle two runs.
* **Quantile of a bucket vector**, exactly as PromQL's `histogram_quantile`
  computes it (`bucketQuantile` in Prometheus' `promql/quantile.go`): the
  rank is `q * observations`; the answer lies in the first bucket whose
  cumulative count reaches the rank, interpolated linearly between that
  bucket's lower bound (the bound below it, 0 for the first bucket) and its
  upper bound, by the share of the bucket's own count the rank takes up. A
  rank in the +Inf bucket answers the highest finite bound (all Prometheus
  can say); no observations answer NaN.
* **Bootstrap.** Each side's blocks are resampled with replacement,
  independently, with the same seeded weights as the latency and rate checks
  (`stats._weights`, `stats._generators`); a resample's bucket vector is
  `weights @ block counts` and its quantile the rule above. The effect is the
  log ratio current / baseline, studentized as `stats` explains
  (`stats._effect_from_sides`).

The estimates are bounded by the bucket edges: a change inside one bucket
moves the interpolated quantile only as far as the counts around it move, and
a quantile in the +Inf bucket cannot move at all. The point values are in the
unit of `bounds` (the gate passes microseconds, so its outputs read as ms like
the client latencies).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from harness.analysis import stats

__all__ = ["BucketBlocks", "block_rows", "bootstrap_quantile", "histogram_quantile", "padded"]


@dataclass(frozen=True)
class BucketBlocks:
    """One side of a comparison: observations per block and bucket.

    `counts[j, k]`: observations of block j in bucket k, bucket k ending at
    `bounds[k]` and the last (index `len(bounds)`) at +Inf. `total` holds
    every row given, those of dropped partial blocks included (the point
    estimate uses it); `dropped` counts those rows."""

    counts: np.ndarray
    total: np.ndarray
    bounds: np.ndarray
    rows_per_block: int
    rows: int
    dropped: int

    @property
    def n_blocks(self) -> int:
        return self.counts.shape[0]

    @property
    def observations(self) -> float:
        return float(self.total.sum())


def padded(counts: Sequence[float], n_buckets: int) -> np.ndarray:
    """A bucket vector as stored (trailing empty buckets left out) at its full length."""
    if len(counts) > n_buckets:
        raise ValueError(f"{len(counts)} bucket counts for {n_buckets} buckets")
    out = np.zeros(n_buckets, dtype=np.float64)
    out[:len(counts)] = counts
    return out


def block_rows(runs: Sequence[np.ndarray], bounds: Sequence[float],
               rows_per_block: int) -> BucketBlocks:
    """Each run's rows (one per scrape: `(rows, len(bounds) + 1)` counts) summed into
    blocks of `rows_per_block` consecutive rows; the blocks of all runs stacked."""
    if rows_per_block < 1:
        raise ValueError("a block holds at least one row")
    edges = np.asarray(bounds, dtype=np.float64)
    if edges.ndim != 1 or (len(edges) > 1 and (np.diff(edges) <= 0).any()):
        raise ValueError("bounds must be ascending")
    k = len(edges) + 1
    blocks, total = [np.zeros((0, k))], np.zeros(k)
    rows = dropped = 0
    for run in runs:
        m = np.asarray(run, dtype=np.float64).reshape(-1, k)
        n = len(m) // rows_per_block
        used = n * rows_per_block
        blocks.append(m[:used].reshape(n, rows_per_block, k).sum(axis=1))
        total += m.sum(axis=0)
        rows += len(m)
        dropped += len(m) - used
    return BucketBlocks(np.vstack(blocks), total, edges, rows_per_block, rows, dropped)


def histogram_quantile(bounds: Sequence[float] | np.ndarray, counts: np.ndarray,
                       q: float) -> np.ndarray:
    """PromQL's `histogram_quantile(q, ...)` of per-bucket counts (last axis: the
    buckets, the last one +Inf), for every leading row at once; NaN where empty.

    `bounds` are the finite upper bounds, ascending and positive (so the first
    bucket's lower bound is 0)."""
    if not 0 <= q <= 1:
        raise ValueError("q must lie in [0, 1]")
    edges = np.asarray(bounds, dtype=np.float64)
    c = np.asarray(counts, dtype=np.float64)
    if c.shape[-1] != len(edges) + 1:
        raise ValueError(f"{c.shape[-1]} buckets for {len(edges)} finite bounds")
    cum = np.cumsum(c, axis=-1)
    observations = cum[..., -1]
    rank = q * observations
    # the first bucket whose cumulative count reaches the rank (sort.Search in PromQL)
    b = np.minimum((cum < rank[..., None]).sum(axis=-1), len(edges))
    upper = np.append(edges, np.inf)
    lower = np.concatenate([[0.0], edges])
    before = np.where(b > 0, np.take_along_axis(cum, np.maximum(b - 1, 0)[..., None],
                                                axis=-1)[..., 0], 0.0)
    own = np.take_along_axis(c, b[..., None], axis=-1)[..., 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        fraction = np.where(own > 0, (rank - before) / own, 1.0)
        value = lower[b] + (upper[b] - lower[b]) * fraction
    highest = edges[-1] if len(edges) else math.nan
    value = np.where(b == len(edges), highest, value)  # the +Inf bucket: its lower bound
    return np.where(observations > 0, value, np.nan)


def bootstrap_quantile(base: BucketBlocks, cur: BucketBlocks, q: float = 0.95,
                       resamples: int = stats.DEFAULT_RESAMPLES,
                       seed: int = 0) -> stats.Effect:
    """Block bootstrap of the quantile ratio current / baseline (log scale).

    Both sides must have the same bucket bounds. Point values: the quantile of
    every row given (`total`), in the unit of `bounds`."""
    if base.bounds.shape != cur.bounds.shape or not np.array_equal(base.bounds, cur.bounds):
        raise ValueError("both sides must have the same bucket bounds")
    gens = stats._generators(seed)  # the gate's one resampling machinery
    logs = []
    for side, gen in zip((base, cur), gens, strict=True):
        weights = stats._weights(side.n_blocks, resamples, gen)
        merged = weights @ side.counts if side.n_blocks else np.zeros((resamples,
                                                                        len(side.total)))
        with np.errstate(divide="ignore", invalid="ignore"):
            logs.append(np.log(histogram_quantile(side.bounds, merged, q)))
    qb = float(histogram_quantile(base.bounds, base.total, q))
    qc = float(histogram_quantile(cur.bounds, cur.total, q))
    est = math.log(qc / qb) if qb > 0 and qc > 0 else math.nan
    return stats._effect_from_sides("log_ratio", est, qb, qc, logs[0], logs[1],
                                    base.n_blocks, cur.n_blocks)
