"""Hodges-Lehmann over rounds: when a side has 5+ runs, the run is the unit.

With 5+ rounds a side, run-level
  values (e.g. each run's p95) are the unit; the shift of the log values is the
  median of pairwise differences and its bounds are order statistics of those
  differences at ranks from the exact Mann-Whitney null distribution
  (distribution-free, counted here; `scipy.stats.mannwhitneyu` agrees in the
  tests).

Above 2,500 pairs (benchmark rounds: hundreds to tens of thousands a side)
counting the null distribution and holding the m * n differences are out of
reach; `LargeHodgesLehmann` uses the normal approximation of U for p-values
and ranks, and finds the estimate and bounds as exact order statistics by
counting (see its docstring).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from scipy import special

from harness.analysis.stats import Effect, Scale


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
    current_i - baseline_j; bounds come from `interval(alpha)`. Up to
    `EXACT_MAX_PAIRS` pairs the null distribution is exact (`HodgesLehmann`);
    above, the large-sample form (`LargeHodgesLehmann`: normal approximation,
    the same estimate and order statistics, counted without the pairs)."""
    b, c = np.asarray(baseline, dtype=np.float64), np.asarray(current, dtype=np.float64)
    if len(b) == 0 or len(c) == 0:
        raise ValueError("each side needs at least one value")
    if scale == "log_ratio":
        if (b <= 0).any() or (c <= 0).any():
            raise ValueError("log_ratio needs positive values")
        lb, lc = np.log(b), np.log(c)
    else:
        lb, lc = b, c
    # A normal-theory SE (pooled MAD), only to say how many more rounds would decide.
    pooled = np.concatenate([lb - np.median(lb), lc - np.median(lc)])
    sigma = 1.4826 * float(np.median(np.abs(pooled)))
    se = sigma * math.sqrt(1 / len(b) + 1 / len(c)) * math.sqrt(math.pi / 3)
    point = (lambda v: float(np.exp(np.median(v)))) if scale == "log_ratio" else \
        (lambda v: float(np.median(v)))
    if len(b) * len(c) > EXACT_MAX_PAIRS:
        return _large(lb, lc, se, scale, point)
    d = np.sort((lc[:, None] - lb[None, :]).ravel())
    return HodgesLehmann(scale, float(np.median(d)), se, math.inf, point(lb), point(lc), len(b),
                         len(c), unit="rounds", draws=None, method="Hodges-Lehmann",
                         differences=d)


# ---------------------------------------------------------------- large samples

EXACT_MAX_PAIRS = 2500
"""Up to this many pairs (m * n; 50 rounds a side) the exact null distribution is counted;
above it `hodges_lehmann` switches to the large-sample form."""


def _count_at_most(cur: np.ndarray, base: np.ndarray, t: float) -> int:
    """#{(i, j): cur_i - base_j <= t} for sorted `base`, in O(m log n) without the pairs."""
    return int(len(cur) * len(base) - np.searchsorted(base, cur - t, side="left").sum())


def order_statistic(cur: np.ndarray, base: np.ndarray, k: int) -> float:
    """The k-th smallest (1-based) of the m * n differences cur_i - base_j, exactly.

    `base` sorted. Bisection on the value (each step counts the differences at
    most t in O(m log n)) until no float lies between the bounds, then the
    largest actual difference at most the upper bound: the order statistic
    itself, never an interpolation, and no m * n array."""
    lo = float(cur.min() - base.max())  # the smallest difference: count >= 1
    hi = float(cur.max() - base.min())  # the largest: count == m * n >= k
    if _count_at_most(cur, base, lo) >= k:
        return lo
    for _ in range(200):  # count(lo) < k <= count(hi)
        mid = lo + (hi - lo) / 2
        if mid <= lo or mid >= hi:
            break
        if _count_at_most(cur, base, mid) >= k:
            hi = mid
        else:
            lo = mid
    idx = np.searchsorted(base, cur - hi, side="left")  # smallest base_j >= cur_i - hi
    ok = idx < len(base)
    return float(np.max(cur[ok] - base[idx[ok]]))


def _tie_term(values: np.ndarray) -> float:
    """sum(t^3 - t) over groups of equal values (the Mann-Whitney tie correction)."""
    _, counts = np.unique(values, return_counts=True)
    t = counts.astype(np.float64)
    return float((t * t * t - t).sum())


@dataclass(frozen=True)
class LargeHodgesLehmann(HodgesLehmann):
    """Hodges-Lehmann for samples too large to count (benchmark rounds: 10^2 to 10^5 a side).

    * **p-values**: the normal approximation of the Mann-Whitney U with the
      tie correction and the continuity correction, as
      `scipy.stats.mannwhitneyu(method="asymptotic")` computes it (the tests
      check they agree). U for a shift m is counted on the full data by binary
      search over the sorted baseline: O((m + n) log n).
    * **bounds**: the usual asymptotic ranks, k = floor(mn/2 + 1/2 + z_alpha
      sigma_U) (sigma_U tie-corrected on the unshifted data), the inverse of
      the same test; the bounds are the k-th smallest and k-th largest
      pairwise differences.
    * **the estimate and the bounds are exact order statistics of all m * n
      differences**, found by counting (`order_statistic`), not by
      subsampling: the pairwise array itself (5 * 10^8 values for two runs of
      22,000 rounds) is never built, and nothing depends on a seed.

    `differences` is None here; `base_values`/`cur_values` hold each side on
    the effect's scale, sorted."""

    base_values: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]
    cur_values: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]
    sigma_u: float = math.nan

    def _pairs(self) -> int:
        return len(self.cur_values) * len(self.base_values)

    def _u_greater(self, m: float) -> float:
        """U of "cur - m above base": pairs with d > m, ties counted half."""
        shifted = self.cur_values - m
        below = np.searchsorted(self.base_values, shifted, side="left")  # base_j < cur_i - m
        upto = np.searchsorted(self.base_values, shifted, side="right")
        return float(below.sum() + 0.5 * (upto - below).sum())

    def _sigma(self, m: float) -> float:
        mc, nb = len(self.cur_values), len(self.base_values)
        n = mc + nb
        ties = _tie_term(np.concatenate([self.cur_values - m, self.base_values]))
        var = mc * nb / 12.0 * ((n + 1) - ties / (n * (n - 1)))
        return math.sqrt(max(var, 0.0))

    def _p(self, u: float, m: float) -> float:
        """P(U >= u) under the null, normal approximation, continuity-corrected."""
        sigma = self._sigma(m)
        mu = self._pairs() / 2.0
        if sigma == 0:
            return 1.0 if u <= mu else 0.0
        return float(special.ndtr(-(u - mu - 0.5) / sigma))

    def p_greater(self, m: float) -> float:
        return self._p(self._u_greater(m), m)

    def p_less(self, m: float) -> float:
        return self._p(self._pairs() - self._u_greater(m), m)

    def _rank(self, alpha: float) -> int:
        if not 0 < alpha < 0.5 or not self.sigma_u > 0:
            return 0
        k = math.floor(self._pairs() / 2.0 + 0.5 + float(special.ndtri(alpha)) * self.sigma_u)
        return max(k, 0)

    def interval(self, alpha: float) -> tuple[float, float]:
        k = self._rank(alpha)
        if k == 0:
            return -math.inf, math.inf
        c, b = self.cur_values, self.base_values
        return order_statistic(c, b, k), order_statistic(c, b, self._pairs() - k + 1)

    def more_data(self, distance: float, alpha: float) -> float:
        """Factor on the rounds per side (halfwidths shrink like 1/sqrt(rounds))."""
        if distance <= 0 or not math.isfinite(self.se) or self.se == 0:
            return math.inf
        return max(1.0, (float(special.ndtri(1 - alpha)) * self.se / distance) ** 2)


def _large(lb: np.ndarray, lc: np.ndarray, se: float, scale: Scale, point) -> LargeHodgesLehmann:
    b, c = np.sort(lb), np.sort(lc)
    pairs = len(b) * len(c)
    half = (pairs + 1) // 2
    median = order_statistic(c, b, half) if pairs % 2 else \
        (order_statistic(c, b, half) + order_statistic(c, b, half + 1)) / 2
    n = len(b) + len(c)
    var = len(b) * len(c) / 12.0 * ((n + 1) - _tie_term(np.concatenate([b, c])) / (n * (n - 1)))
    return LargeHodgesLehmann(scale, median, se, math.inf, point(lb), point(lc), len(b), len(c),
                              unit="rounds", draws=None, method="Hodges-Lehmann (asymptotic)",
                              differences=None, base_values=b, cur_values=c,
                              sigma_u=math.sqrt(max(var, 0.0)))
