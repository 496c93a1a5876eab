"""The gate's verdicts: equivalence tests against a tolerance, Holm-adjusted.

`decide`: equivalence tests against a tolerance, not
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
from dataclasses import dataclass
from typing import Literal

import numpy as np

from harness.analysis.stats import MIN_BLOCKS, MIN_ROUNDS, Effect


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
    too_short: bool = False
    """Fewer blocks (or rounds) a side than the gate judges on: inconclusive whatever the
    interval says."""


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
            if lacking[i] is not None:  # the length it lacks, whatever the interval says
                factor = lacking[i]
        lo, hi = e.interval(level)
        out.append(Verdict(
            name=check.name, verdict=name, baseline=e.baseline, current=e.current,
            estimate=_natural(e, e.estimate), interval=(_natural(e, lo), _natural(e, hi)),
            confidence=1 - 2 * level, tolerance=check.tolerance, p_regressed=adj[0],
            p_improved=adj[1], p_equivalent=adj[2], raw_p=tuple(raw[i]), more_data=factor,
            advice=_advice(e, factor) if factor is not None else "", method=e.method,
            too_short=lacking[i] is not None and math.isfinite(lacking[i])))
    return out
