"""Several runs' estimates of one change, pooled; and the boundary for looking repeatedly.

A single interleaved run (`harness.analysis.interleave`) may be too short to show
that a change is under a limit: the interval of a p95 ratio shrinks only with the
square root of the requests. Pooling runs of the same code adds their evidence.
Pure: it takes each run's estimate and 95% interval, as `trace_overhead` records them.

* **The unit is the run.** Each run's change is read on the log scale, with its
  standard error recovered from its bootstrap interval as if the interval were normal
  there (`se = (log(1 + high) - log(1 + low)) / (2 z)`): the interval already knows the
  noise inside the run, blocks and all; nothing below the run is resampled again.
* **Random effects** (DerSimonian and Laird): the runs are weighted by the inverse of
  their variance plus a between-run variance `tau2`, estimated from Cochran's Q. Runs on
  different days of a machine may disagree by more than their own noise (a different
  clone's layout, a neighbour on the host); when they do, the pooled interval widens,
  and when they agree (Q at or below its degrees of freedom) it is the fixed-effect one.
* **Looking again is not free.** Asking after every new run whether the pool is under
  the limit, at 95% each time, is a group-sequential test with a larger error than 2.5%
  on its side (three looks: about 5.3%, `tests/analysis/test_pooling.py`). `POCOCK_Z`
  holds the constant boundary that keeps the overall one-sided error at 2.5% for K
  equally informative looks (Pocock 1977, the two-sided 5% constants).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

Z95 = 1.959964
"""The normal quantile of a two-sided 95% interval (what `trace_overhead` reports)."""

POCOCK_Z = {1: 1.960, 2: 2.178, 3: 2.289, 4: 2.361, 5: 2.413}
"""Looks -> the boundary, in standard errors, for an overall one-sided error of 2.5%."""


@dataclass(frozen=True)
class RunChange:
    """One run's change (`on / off - 1`) and its 95% interval, as recorded."""

    change: float
    low: float
    high: float

    def log_se(self, z: float = Z95) -> tuple[float, float]:
        """The change as a log ratio, and its standard error read from the interval."""
        if not (self.low <= self.change <= self.high and self.low > -1):
            raise ValueError(f"not an interval around its estimate: {self}")
        return math.log1p(self.change), (math.log1p(self.high) - math.log1p(self.low)) / (2 * z)


@dataclass(frozen=True)
class Pooled:
    """The pooled change and its interval at `z`, with how much the runs disagreed."""

    change: float
    low: float
    high: float
    z: float
    se: float
    """Of the pooled log ratio."""
    runs: int
    q: float
    """Cochran's Q: the runs' spread around the pooled value, in their own noise units."""
    tau2: float
    """The between-run variance of the log ratio (0: they agree within their noise)."""


def pool(runs: Sequence[RunChange], z: float = Z95) -> Pooled:
    """Random-effects pool of `runs`, its interval `z` standard errors wide each side."""
    if not runs:
        raise ValueError("nothing to pool")
    pairs = [r.log_se() for r in runs]
    if any(se <= 0 for _, se in pairs):
        raise ValueError("a run's interval has no width")
    w = [1 / se ** 2 for _, se in pairs]
    fixed = sum(wi * d for wi, (d, _) in zip(w, pairs, strict=True)) / sum(w)
    q = sum(wi * (d - fixed) ** 2 for wi, (d, _) in zip(w, pairs, strict=True))
    scale = sum(w) - sum(wi * wi for wi in w) / sum(w)
    tau2 = max(0.0, (q - (len(runs) - 1)) / scale) if scale > 0 else 0.0
    wr = [1 / (se ** 2 + tau2) for _, se in pairs]
    mean = sum(wi * d for wi, (d, _) in zip(wr, pairs, strict=True)) / sum(wr)
    se = math.sqrt(1 / sum(wr))
    return Pooled(change=math.expm1(mean), low=math.expm1(mean - z * se),
                  high=math.expm1(mean + z * se), z=z, se=se, runs=len(runs), q=q, tau2=tau2)
