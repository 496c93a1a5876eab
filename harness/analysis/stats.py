"""The gate's statistics: how sure is "slower or not"?

Three pieces, all pure and deterministic for a given seed:

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
* **Hodges-Lehmann** (`hodges_lehmann`), with 5+ rounds a side: run-level
  values (e.g. each run's p95) are the unit; the shift of the log values is the
  median of pairwise differences and its bounds are order statistics of those
  differences at ranks from the exact Mann-Whitney null distribution
  (distribution-free, counted here; `scipy.stats.mannwhitneyu` agrees in the
  tests).
* **Verdicts** (`decide`): equivalence tests against a tolerance, not
  "significant or not". Per check three one-sided p-values: regressed (H0:
  the effect is within the tolerance or better), improved (H0: not beyond the
  tolerance on the good side) and equivalent (TOST: the larger of the two
  one-sided p-values for "inside +-tolerance"). Each family is Holm-adjusted
  across all checks of the gate, so the policy's misrate bounds the whole
  gate's false-alarm rate, whatever the dependence between checks (all
  endpoints of a run share the machine's slow seconds). The interval reported
  is the (1 - 2 * level) interval at the Holm level that decided the check, so
  a report's interval and its verdict always agree.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

import numpy as np
from scipy import special

from harness.analysis.blocks import Blocks, quantiles, target_counts

__all__ = [
    "DEFAULT_RESAMPLES",
    "MIN_BLOCKS",
    "MIN_ROUNDS",
    "Check",
    "Effect",
    "HodgesLehmann",
    "Tolerance",
    "Verdict",
    "bootstrap_pairs",
    "bootstrap_quantiles",
    "bootstrap_rates",
    "decide",
    "hodges_lehmann",
    "holm",
    "mann_whitney_pmf",
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
                    seed: int = 0) -> list[dict[float, Effect]]:
    """`bootstrap_quantiles` of several endpoints of the same two runs, at once.

    The endpoints of a run are resampled with the same time blocks (a joint
    block bootstrap of the run, which keeps the dependence between endpoints:
    a slow second is slow for all of them), so every side with the same
    number of blocks shares one weight matrix and one matrix product."""
    for b, c in pairs:
        if b.grid is not c.grid:
            raise ValueError("both sides must come from one block_pair (one bucket grid)")
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
            effects[p] = _effect_from_sides("log_ratio", est, qb, qc, b, c, base.n_blocks,
                                            cur.n_blocks)
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


# ---------------------------------------------------------------- Hodges-Lehmann


@lru_cache(maxsize=64)
def mann_whitney_pmf(m: int, n: int) -> np.ndarray:
    """Exact null distribution of the Mann-Whitney U for sizes m, n (no ties), by counting.

    f(m, n; u) = f(m-1, n; u-n) + f(m, n-1; u): the largest observation is
    either one of the m (it beats all n) or one of the n."""
    if m < 0 or n < 0:
        raise ValueError("sizes must be >= 0")
    row = [np.ones(1)] * (n + 1)  # i = 0: U is always 0
    for i in range(1, m + 1):
        new = [np.ones(1)]
        for j in range(1, n + 1):
            a = np.zeros(i * j + 1)
            a[j:j + len(row[j])] += row[j]
            a[:len(new[j - 1])] += new[j - 1]
            new.append(a)
        row = new
    f = row[n]
    out = f / f.sum()
    out.setflags(write=False)
    return out


@dataclass(frozen=True)
class HodgesLehmann(Effect):
    """Shift of current vs baseline from run-level values (one value per round)."""

    differences: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]
    """Sorted pairwise differences current_i - baseline_j (on the effect scale)."""

    def _sf(self, u: int) -> float:
        """P(U >= u) under the null."""
        pmf = mann_whitney_pmf(self.n_cur, self.n_base)
        return float(pmf[max(u, 0):].sum()) if u < len(pmf) else 0.0

    def p_greater(self, m: float) -> float:
        return self._sf(int(np.count_nonzero(self.differences > m)))

    def p_less(self, m: float) -> float:
        return self._sf(int(np.count_nonzero(self.differences < m)))

    def _rank(self, alpha: float) -> int:
        """Largest k >= 1 with P(U <= k-1) <= alpha; 0 when none (too few rounds)."""
        cdf = np.cumsum(mann_whitney_pmf(self.n_cur, self.n_base))
        return int(np.count_nonzero(cdf <= alpha + 1e-12))

    def interval(self, alpha: float) -> tuple[float, float]:
        k, d = self._rank(alpha), self.differences
        if k == 0:
            return -math.inf, math.inf
        return float(d[k - 1]), float(d[len(d) - k])

    def halfwidth(self, alpha: float, scale: float = 1.0) -> float:
        lo, hi = self.interval(alpha)
        if scale == 1.0 and math.isfinite(lo):
            return (hi - lo) / 2
        z = float(special.ndtri(1 - alpha))
        return z * self.se / math.sqrt(scale)

    def more_data(self, distance: float, alpha: float) -> float:
        """Factor on the rounds per side; at least what lets the exact test reach alpha."""
        if distance <= 0 or not math.isfinite(self.se):
            return math.inf
        n = min(self.n_base, self.n_cur)
        need = n
        while 1.0 / math.comb(2 * need, need) > alpha:  # the exact test's smallest p
            need += 1
        k = (float(special.ndtri(1 - alpha)) * self.se / distance) ** 2
        return max(k, need / n)


def hodges_lehmann(baseline: Sequence[float], current: Sequence[float],
                   scale: Scale = "log_ratio") -> HodgesLehmann:
    """Hodges-Lehmann shift between two sets of run-level values (e.g. each round's p95).

    `log_ratio`: on log values, reported as a ratio; `difference`: on the
    values themselves. The estimate is the median of the pairwise differences
    current_i - baseline_j; bounds come from `interval(alpha)`."""
    b, c = np.asarray(baseline, dtype=np.float64), np.asarray(current, dtype=np.float64)
    if len(b) == 0 or len(c) == 0:
        raise ValueError("each side needs at least one value")
    if scale == "log_ratio":
        if (b <= 0).any() or (c <= 0).any():
            raise ValueError("log_ratio needs positive values")
        lb, lc = np.log(b), np.log(c)
    else:
        lb, lc = b, c
    d = np.sort((lc[:, None] - lb[None, :]).ravel())
    # A normal-theory SE (pooled MAD), only to say how many more rounds would decide.
    pooled = np.concatenate([lb - np.median(lb), lc - np.median(lc)])
    sigma = 1.4826 * float(np.median(np.abs(pooled)))
    se = sigma * math.sqrt(1 / len(b) + 1 / len(c)) * math.sqrt(math.pi / 3)
    point = (lambda v: float(np.exp(np.median(v)))) if scale == "log_ratio" else \
        (lambda v: float(np.median(v)))
    return HodgesLehmann(scale, float(np.median(d)), se, math.inf, point(lb), point(lc), len(b),
                         len(c), unit="rounds", draws=None, method="Hodges-Lehmann",
                         differences=d)


# ---------------------------------------------------------------- verdicts


@dataclass(frozen=True)
class Tolerance:
    """How much worse is still fine: `limit` on the bad side (a positive magnitude).

    Relative (`relative=True`, effect on the log scale): +15% latency is
    `Tolerance(0.15)`; -5% throughput is `Tolerance(0.05, higher_is_worse=False)`.
    Absolute (effect a difference): a hit ratio 5 points down is
    `Tolerance(0.05, relative=False, higher_is_worse=False)`. The good side
    mirrors the bad one on the effect's scale (for ratios: 1/1.15)."""

    limit: float
    relative: bool = True
    higher_is_worse: bool = True

    def margin(self) -> float:
        """The tolerance on the effect's scale, as a positive magnitude."""
        if self.limit < 0:
            raise ValueError("a tolerance is a positive magnitude")
        if not self.relative:
            return self.limit
        sign = 1 if self.higher_is_worse else -1
        if 1 + sign * self.limit <= 0:
            raise ValueError("a relative tolerance on the good side must stay above -100%")
        return abs(math.log1p(sign * self.limit))


@dataclass(frozen=True)
class Check:
    name: str
    effect: Effect
    tolerance: Tolerance


VerdictName = Literal["regressed", "improved", "pass", "inconclusive"]


@dataclass(frozen=True)
class Verdict:
    """One check's outcome, in natural units (a ratio for log effects, else a difference)."""

    name: str
    verdict: VerdictName
    baseline: float
    current: float
    estimate: float
    interval: tuple[float, float]
    confidence: float
    """The interval's level: 1 - 2 * (the Holm level that decided the check)."""
    tolerance: Tolerance
    p_regressed: float
    p_improved: float
    p_equivalent: float
    """Holm-adjusted across the gate's checks."""
    raw_p: tuple[float, float, float]
    more_data: float | None = None
    """Inconclusive: about this many times the data would decide (inf: cannot tell)."""
    advice: str = ""
    method: str = "block bootstrap"


def one_sided(effect: Effect, tolerance: Tolerance) -> tuple[float, float, float]:
    """Raw (p_regressed, p_improved, p_equivalent) of one effect against a tolerance."""
    m = tolerance.margin()
    if tolerance.higher_is_worse:
        p_reg, p_imp = effect.p_greater(m), effect.p_less(-m)
    else:
        p_reg, p_imp = effect.p_less(-m), effect.p_greater(m)
    p_eq = max(effect.p_greater(-m), effect.p_less(m))
    return p_reg, p_imp, p_eq


def holm(pvalues: Sequence[float], alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Holm's step-down: (adjusted p-values, the level each hypothesis was tested at).

    Adjusted p of the i-th smallest: max over j <= i of (m - j) p_(j) (0-based),
    capped at 1; rejected iff adjusted < alpha. The level is alpha / (m - i)
    for a rejected hypothesis and the level where the steps stopped for the
    rest: at that level each hypothesis's own test agrees with its outcome."""
    p = np.asarray(pvalues, dtype=np.float64)
    m = len(p)
    if m == 0:
        return p.copy(), p.copy()
    order = np.argsort(p, kind="stable")
    mult = m - np.arange(m)
    adj_sorted = np.minimum(np.maximum.accumulate(mult * p[order]), 1.0)
    level_sorted = alpha / mult
    failed = np.flatnonzero(adj_sorted >= alpha)
    if len(failed):
        level_sorted[failed[0]:] = level_sorted[failed[0]]
    adjusted, level = np.empty(m), np.empty(m)
    adjusted[order], level[order] = adj_sorted, level_sorted
    return adjusted, level


def _natural(effect: Effect, x: float) -> float:
    return math.exp(x) if effect.scale == "log_ratio" else x


def _too_little(effect: Effect, min_blocks: int) -> float | None:
    """The data factor a check lacks before it can be judged at all (None: enough)."""
    n = min(effect.n_base, effect.n_cur)
    floor = MIN_ROUNDS if effect.unit == "rounds" else min_blocks
    if n < floor:
        return floor / max(n, 1)
    if not (math.isfinite(effect.estimate) and math.isfinite(effect.se)):
        return math.inf
    return None


def _advice(effect: Effect, factor: float) -> str:
    if not math.isfinite(factor):
        return "cannot tell how much more data would decide (the estimate sits on the tolerance)"
    if effect.unit == "rounds":
        n = min(effect.n_base, effect.n_cur)
        return f"about {max(1, math.ceil(n * factor - n))} more rounds a side"
    return f"run about {factor:.1f}x longer"


def decide(checks: Sequence[Check], misrate: float = 0.01,
           min_blocks: int = MIN_BLOCKS) -> list[Verdict]:
    """The gate's verdict on every check, Holm-adjusted per family across all checks.

    `regressed` if the adjusted p_regressed < misrate, else `improved` if the
    adjusted p_improved < misrate, else `pass` if the adjusted p_equivalent <
    misrate, else `inconclusive` with `more_data`: the factor by which the
    data (blocks: run length; rounds) would shrink the interval enough to
    decide (halfwidths scale like 1/sqrt(data)). A check with fewer than
    `min_blocks` blocks (or 5 rounds) a side is inconclusive with p = 1, and
    still counts in the adjustment."""
    raw, lacking = [], []
    for check in checks:
        short = _too_little(check.effect, min_blocks)
        lacking.append(short)
        raw.append((1.0, 1.0, 1.0) if short is not None
                   else one_sided(check.effect, check.tolerance))
    families = np.array(raw, dtype=np.float64).reshape(len(checks), 3)
    adjusted, levels = zip(*(holm(families[:, f], misrate) for f in range(3))) if checks \
        else ((), ())
    out: list[Verdict] = []
    for i, check in enumerate(checks):
        e, m = check.effect, check.tolerance.margin()
        adj = tuple(float(a[i]) for a in adjusted)
        lev = tuple(float(v[i]) for v in levels)
        factor: float | None = None
        if adj[0] < misrate:
            name, level = "regressed", lev[0]
        elif adj[1] < misrate:
            name, level = "improved", lev[1]
        elif adj[2] < misrate:
            name, level = "pass", lev[2]
        else:
            name, level = "inconclusive", min(lev)
            distance = abs(m - abs(e.estimate)) if math.isfinite(e.estimate) else 0.0
            factor = e.more_data(distance, level) if math.isfinite(e.se) else math.inf
            if lacking[i] is not None:
                factor = max(factor, lacking[i])
        lo, hi = e.interval(level)
        out.append(Verdict(
            name=check.name, verdict=name, baseline=e.baseline, current=e.current,
            estimate=_natural(e, e.estimate), interval=(_natural(e, lo), _natural(e, hi)),
            confidence=1 - 2 * level, tolerance=check.tolerance, p_regressed=adj[0],
            p_improved=adj[1], p_equivalent=adj[2], raw_p=tuple(raw[i]), more_data=factor,
            advice=_advice(e, factor) if factor is not None else "", method=e.method))
    return out
