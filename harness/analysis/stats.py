"""The gate's statistics: how sure is "slower or not"? Pure, deterministic for a seed.

* **Block bootstrap** (`bootstrap_quantiles`, `bootstrap_rates`). Latencies
  within a run are autocorrelated (a slow second is followed by slow
  seconds), so requests are never treated as independent samples: that would
  call trivial differences significant. The unit of resampling is a block of
  consecutive one-second windows (`harness.analysis.blocks`). Each side's
  blocks are resampled with replacement, independently; a resample's
  histogram is the exact re-merge of its blocks (weights @ block counts) and
  its quantile is HdrHistogram's. The effect is the log ratio current /
  baseline (or, for rates, the difference in absolute terms or the log ratio).
  The bootstrap measures each side's standard error; the test statistic is
  studentized against a t distribution with Welch's degrees of freedom, with
  the usual n/(n-1) correction of the bootstrap variance. Why not bootstrap
  percentiles directly: Holm's first step tests at misrate / checks
  (0.01 / 18 = 0.00056), a tail 2000 resamples cannot resolve; on the log
  scale a quantile ratio is close to normal, and t with few blocks is the
  honest allowance for an SE estimated from ~12 blocks.

With 5+ rounds a side the unit is the run instead (`harness.analysis.rounds`);
the verdicts are in `harness.analysis.verdicts`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy import special

from harness.analysis.blocks import Blocks, quantiles, target_counts

__all__ = [
    "DEFAULT_RESAMPLES",
    "MIN_BLOCKS",
    "MIN_ROUNDS",
    "Effect",
    "bootstrap_pairs",
    "bootstrap_quantiles",
    "bootstrap_rates",
    "rate_blocks",
]

DEFAULT_RESAMPLES = 2000
MIN_BLOCKS = 8
MIN_ROUNDS = 5
Scale = Literal["log_ratio", "difference"]


# ---------------------------------------------------------------- effects


@dataclass(frozen=True)
class Effect:
    """Current vs baseline on one scale, with what a verdict needs (block bootstrap).

    `estimate` is on the full data; `se` comes from the bootstrap; tests and
    intervals use Student's t with `df` degrees of freedom (inf: normal)."""

    scale: Scale
    estimate: float
    se: float
    df: float
    baseline: float
    current: float
    n_base: int
    n_cur: int
    unit: Literal["blocks", "rounds"] = "blocks"
    draws: np.ndarray | None = field(default=None, repr=False)
    """Bootstrap distribution of the effect (current draw - baseline draw)."""
    method: str = "block bootstrap"

    def _cdf(self, x: float) -> float:
        return float(special.stdtr(self.df, x))

    def p_greater(self, m: float) -> float:
        """One-sided p-value of H0: effect <= m (small: the effect is above m)."""
        if not math.isfinite(self.se):
            return 1.0
        if self.se == 0:
            return 0.0 if self.estimate > m else 1.0
        return 1.0 - self._cdf((self.estimate - m) / self.se)

    def p_less(self, m: float) -> float:
        """One-sided p-value of H0: effect >= m (small: the effect is below m)."""
        if not math.isfinite(self.se):
            return 1.0
        if self.se == 0:
            return 0.0 if self.estimate < m else 1.0
        return self._cdf((self.estimate - m) / self.se)

    def halfwidth(self, alpha: float, scale: float = 1.0) -> float:
        """Half the (1 - 2 alpha) interval, with `scale` times as much data."""
        if not math.isfinite(self.se):
            return math.inf
        return float(special.stdtrit(self.df * scale, 1 - alpha)) * self.se / math.sqrt(scale)

    def interval(self, alpha: float) -> tuple[float, float]:
        """The two-sided (1 - 2 alpha) interval of the effect."""
        h = self.halfwidth(alpha)
        return self.estimate - h, self.estimate + h

    def more_data(self, distance: float, alpha: float) -> float:
        """How many times the data would make the (1 - 2 alpha) halfwidth `distance`.

        Halfwidths shrink like 1/sqrt(data) (blocks are the unit, so the run
        must be longer, not busier); a few fixed-point steps let the t
        quantile follow the larger df."""
        if distance <= 0 or not math.isfinite(self.se):
            return math.inf
        k = 1.0
        for _ in range(8):
            new = max(k, (self.halfwidth(alpha, k) * math.sqrt(k) / distance) ** 2)
            if new - k <= 1e-3 * k:
                return new
            k = new
        return k


def _side_stats(logs: np.ndarray, n: int) -> tuple[float, float]:
    """Bias-corrected bootstrap variance of one side and its weight for Welch's df."""
    good = logs[np.isfinite(logs)]
    if n < 2 or len(good) < max(10, 0.99 * len(logs)):
        return math.inf, math.inf
    var = float(np.var(good, ddof=1)) * n / (n - 1)
    return var, var * var / (n - 1)


def _effect_from_sides(scale: Scale, est: float, base_point: float, cur_point: float,
                       b: np.ndarray, c: np.ndarray, nb: int, nc: int) -> Effect:
    vb, wb = _side_stats(b, nb)
    vc, wc = _side_stats(c, nc)
    var = vb + vc
    if not math.isfinite(var) or not math.isfinite(est):
        se, df = math.inf, 1.0
    else:
        se = math.sqrt(var)
        df = var * var / (wb + wc) if wb + wc > 0 else math.inf
    return Effect(scale, est, se, max(df, 1.0), base_point, cur_point, nb, nc,
                  draws=c - b)


def _effect_paired(est: float, base_point: float, cur_point: float, b: np.ndarray,
                   c: np.ndarray, n: int) -> Effect:
    """The effect of paired blocks: the spread of the resampled differences themselves
    (what the two sides share cancels in each), df of n - 1 pairs."""
    d = c - b
    var, _ = _side_stats(d, n)
    se = math.sqrt(var) if math.isfinite(var) and math.isfinite(est) else math.inf
    return Effect("log_ratio", est, se, max(n - 1.0, 1.0) if math.isfinite(se) else 1.0,
                  base_point, cur_point, n, n, draws=d, method="paired block bootstrap")


def _weights(n: int, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Block multiplicities of `resamples` resamples with replacement of n blocks."""
    if n == 0:
        return np.zeros((resamples, 0))
    picks = rng.integers(0, n, (resamples, n)) + n * np.arange(resamples)[:, None]
    return np.bincount(picks.ravel(), minlength=resamples * n).reshape(resamples, n).astype(
        np.float64)


def _generators(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    b, c = np.random.SeedSequence(seed).spawn(2)
    return np.random.default_rng(b), np.random.default_rng(c)


@dataclass
class _Segment:
    """One (histogram, percentile) search: its targets and the grid range to look in."""

    side: int
    target: np.ndarray
    lo: int
    hi: int


def _search(cums: Sequence[np.ndarray], weights: np.ndarray, segs: Sequence[_Segment],
            rows: slice = slice(None)) -> list[tuple[np.ndarray, np.ndarray]]:
    """For each segment, the first position in [lo, hi] where a row's re-merged
    cumulative count reaches its target, and whether the answer is proven to
    lie in that range. All segments go through one matrix product and one
    comparison."""
    cols, widths = [], []
    for s in segs:
        cum = cums[s.side]
        before = cum[:, s.lo - 1:s.lo] if s.lo > 0 else np.zeros((len(cum), 1), cum.dtype)
        cols += [before, cum[:, s.lo:s.hi + 1]]
        widths.append(s.hi - s.lo + 2)
    merged = weights[rows] @ np.hstack(cols)
    targets = np.stack([s.target[rows] for s in segs], axis=1).astype(merged.dtype)
    below = merged < np.repeat(targets, widths, axis=1)
    starts = np.concatenate([[0], np.cumsum(widths)[:-1]])
    ends = starts + np.asarray(widths) - 1
    # The "before" column counts one when it is below the target, as it must be.
    counts = np.add.reduceat(below, starts, axis=1, dtype=np.int64)
    ok = below[:, starts] & ~below[:, ends]
    return [(s.lo - 1 + counts[:, n], ok[:, n]) for n, s in enumerate(segs)]


def resampled_quantile_indices(cums: Sequence[np.ndarray], weights: np.ndarray,
                               percentiles: Sequence[float],
                               pilot: int = 200) -> list[list[np.ndarray]]:
    """`out[i][j]`: per resample (row of `weights`), the grid position of
    `percentiles[j]` in the histogram whose block cumulative counts are
    `cums[i]` (-1: the resample is empty).

    A resample's cumulative counts are `weights @ cum` and its quantile is the
    first bucket reaching HdrHistogram's target rank. Only narrow column
    ranges are multiplied out: the range between the blocks' own quantiles
    (a mixture's quantile lies between its components'), narrowed to what the
    first `pilot` resamples span, widened by a quarter on each side. Rows whose
    answer is not proven inside the range are redone on the whole grid, so the
    result is exact whatever the ranges."""
    n_rows = len(weights)
    totals = np.stack([c[:, -1] if c.shape[1] else np.zeros(len(c)) for c in cums], axis=1)
    n_total = (weights @ totals).astype(np.float64)  # integers: exact
    segs: list[_Segment | None] = []
    for i, cum in enumerate(cums):
        own_total = totals[:, i].astype(np.float64)
        nonempty = own_total > 0
        for p in percentiles:
            if not nonempty.any():
                segs.append(None)
                continue
            own = (cum[nonempty] < target_counts(own_total[nonempty], p)[:, None]).sum(axis=1)
            segs.append(_Segment(i, target_counts(n_total[:, i], p), int(own.min()),
                                 min(int(own.max()), cum.shape[1] - 1)))
    wide = [s for s in segs if s is not None and s.hi - s.lo > 32]
    if wide and n_rows > 2 * pilot:
        for s, (found, ok) in zip(wide, _search(cums, weights, wide, slice(0, pilot))):
            if ok.any():
                lo, hi = int(found[ok].min()), int(found[ok].max())
                span = (hi - lo) // 4 + 2
                s.lo, s.hi = max(lo - span, 0), min(hi + span, cums[s.side].shape[1] - 1)
    live = [s for s in segs if s is not None]
    results = iter(_search(cums, weights, live)) if live else iter(())
    out: list[list[np.ndarray]] = [[] for _ in cums]
    for n, s in enumerate(segs):
        i = n // len(percentiles)
        index = np.full(n_rows, -1, dtype=np.int64)
        if s is not None:
            found, ok = next(results)
            index[:] = found
            redo = (n_total[:, i] > 0) & ~ok
            if redo.any():
                full = weights[redo] @ cums[i]
                index[redo] = (full < s.target[redo, None]).sum(axis=1)
            index[n_total[:, i] == 0] = -1
        out[i].append(index)
    return out


def bootstrap_quantiles(base: Blocks, cur: Blocks, percentiles: Sequence[float] = (50, 95, 99),
                        resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> dict[float, Effect]:
    """Block bootstrap of the quantile ratio current / baseline, per percentile (log scale).

    `base` and `cur` come from `blocks.block_pair` (one shared grid). The
    same block resamples serve every percentile. Point values are HdrHistogram
    quantiles of all windows given (µs)."""
    return bootstrap_pairs([(base, cur)], percentiles, resamples, seed)[0]


def bootstrap_pairs(pairs: Sequence[tuple[Blocks, Blocks]],
                    percentiles: Sequence[float] = (50, 95, 99),
                    resamples: int = DEFAULT_RESAMPLES,
                    seed: int = 0, paired: bool = False) -> list[dict[float, Effect]]:
    """`bootstrap_quantiles` of several endpoints of the same two runs, at once.

    `paired`: block j of one side belongs with block j of the other (interleaved
    blocks of one run, `harness.analysis.interleave`), so both sides are resampled
    with the same block indices and what drifts under both cancels in the ratio.
    Both sides must then have as many blocks.

    The endpoints of a run are resampled with the same time blocks (a joint
    block bootstrap of the run, which keeps the dependence between endpoints:
    a slow second is slow for all of them), so every side with the same
    number of blocks shares one weight matrix and one matrix product."""
    for b, c in pairs:
        if b.grid is not c.grid:
            raise ValueError("both sides must come from one block_pair (one bucket grid)")
    if paired:
        if any(b.n_blocks != c.n_blocks for b, c in pairs):
            raise ValueError("paired sides must have as many blocks")
        same = np.random.SeedSequence(seed)
        gens = (np.random.default_rng(same), np.random.default_rng(same))
    else:
        gens = _generators(seed)
    draws: list[list[np.ndarray]] = [[np.empty(0)] * len(percentiles) for _ in pairs]
    side_draws = [[list(draws[i]) for i in range(len(pairs))] for _ in range(2)]
    for side in (0, 1):
        blocks = [pair[side] for pair in pairs]
        for n in sorted({b.n_blocks for b in blocks}):
            members = [i for i, b in enumerate(blocks) if b.n_blocks == n]
            weights = _weights(n, resamples, gens[side])
            # Only this side's own buckets: the re-merged cumulative count rises
            # nowhere else, so the first bucket reaching a rank is one of them.
            own = [np.flatnonzero(blocks[i].counts.any(axis=0)) for i in members]
            cums = [np.cumsum(blocks[i].counts[:, o], axis=1) for i, o in zip(members, own)]
            # Single precision is exact for integers below 2**24 and twice as fast:
            # a resample holds at most n times its largest block.
            if n and max(float(c[:, -1].max()) * n if c.size else 0.0 for c in cums) < 2 ** 24:
                weights, cums = weights.astype(np.float32), [c.astype(np.float32) for c in cums]
            found = (resampled_quantile_indices(cums, weights, percentiles) if n
                     else [[np.full(resamples, -1)] * len(percentiles) for _ in members])
            for i, o, idx in zip(members, own, found):
                side_draws[side][i] = [np.where(x >= 0, o[np.maximum(x, 0)], -1) if len(o)
                                       else x for x in idx]
    out: list[dict[float, Effect]] = []
    for i, (base, cur) in enumerate(pairs):
        with np.errstate(divide="ignore"):
            log_high = np.log(np.maximum(base.grid.highest, 1).astype(np.float64))
            log_low = np.log(np.where(base.grid.lowest > 0, base.grid.lowest, np.nan))
        effects: dict[float, Effect] = {}
        for j, p in enumerate(percentiles):
            lv = log_high if p else log_low
            ib, ic = side_draws[0][i][j], side_draws[1][i][j]
            b = np.where(ib >= 0, lv[np.maximum(ib, 0)], np.nan)
            c = np.where(ic >= 0, lv[np.maximum(ic, 0)], np.nan)
            qb, qc = _point(base, p), _point(cur, p)
            est = math.log(qc / qb) if qb > 0 and qc > 0 else math.nan
            effects[p] = (_effect_paired(est, qb, qc, b, c, base.n_blocks) if paired else
                          _effect_from_sides("log_ratio", est, qb, qc, b, c, base.n_blocks,
                                             cur.n_blocks))
        out.append(effects)
    return out


def _point(side: Blocks, p: float) -> float:
    return float(quantiles(side.total, side.grid, [p])[0])


def rate_blocks(numerator: Sequence[float], denominator: Sequence[float],
                block_s: int = 5) -> tuple[np.ndarray, np.ndarray, int]:
    """Per-window (numerator, denominator) summed into blocks: (num, den, dropped windows)."""
    num, den = np.asarray(numerator, dtype=np.float64), np.asarray(denominator, dtype=np.float64)
    if num.shape != den.shape or num.ndim != 1:
        raise ValueError("numerator and denominator must be 1-d and of one length")
    n = len(num) // block_s
    used = n * block_s
    return (num[:used].reshape(n, block_s).sum(axis=1),
            den[:used].reshape(n, block_s).sum(axis=1), len(num) - used)


def bootstrap_rates(base: tuple[Sequence[float], Sequence[float]],
                    cur: tuple[Sequence[float], Sequence[float]], scale: Scale = "difference",
                    resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> Effect:
    """Block bootstrap of a ratio of sums (error rate, hit ratio, retries per attempt).

    Each side is (numerator, denominator) per block; a resample's statistic is
    sum(num) / sum(den). The effect is current - baseline as a fraction
    (`difference`: 0.05 is 5 points) or the log of current / baseline."""
    (nb_, db_), (nc_, dc_) = ([np.asarray(a, dtype=np.float64) for a in s] for s in (base, cur))
    gb, gc = _generators(seed)
    wb, wc = _weights(len(nb_), resamples, gb), _weights(len(nc_), resamples, gc)
    with np.errstate(divide="ignore", invalid="ignore"):
        rb, rc = (wb @ nb_) / (wb @ db_), (wc @ nc_) / (wc @ dc_)
        pb = float(nb_.sum() / db_.sum()) if db_.sum() else math.nan
        pc = float(nc_.sum() / dc_.sum()) if dc_.sum() else math.nan
        if scale == "log_ratio":
            rb, rc = np.log(rb), np.log(rc)
            est = math.log(pc / pb) if pb > 0 and pc > 0 else math.nan
        else:
            est = pc - pb
    return _effect_from_sides(scale, est, pb, pc, rb, rc, len(nb_), len(nc_))
