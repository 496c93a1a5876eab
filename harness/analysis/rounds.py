"""Hodges-Lehmann over rounds: when a side has 5+ runs, the run is the unit.

With 5+ rounds a side, run-level
  values (e.g. each run's p95) are the unit; the shift of the log values is the
  median of pairwise differences and its bounds are order statistics of those
  differences at ranks from the exact Mann-Whitney null distribution
  (distribution-free, counted here; `scipy.stats.mannwhitneyu` agrees in the
  tests).
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
