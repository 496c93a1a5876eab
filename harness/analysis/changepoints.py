"""Change points in a series of runs: where a metric's level shifted, by E-divisive.

The history page (`harness report --history`) asks of every series (p95 per endpoint,
throughput, hit ratios, retry rates, one value per run) "at which run did this change?".
A per-run threshold cannot answer it: it alarms on every noisy run and misses a slow
slide. E-divisive (Matteson and James, 2014) splits the series where the energy
distance between the two sides is largest and keeps the split when a test says it is
real, recursively; Hunter/Otava (Fleming et al., ICPE 2023) run it over sliding
windows with a t-test, then merge away the weak points, which is what MongoDB's and
DataStax's performance CI use on exactly this kind of series.

Which library, weighed (PyPI, checked 2026-12):

* MongoDB's `signal-processing-algorithms` 2.1.6 (2024-12, the last release): requires
  Python <3.12, `numpy<2`, `gevent<25` and `setuptools<71`. This project has numpy
  2.4 (pandas 3 needs numpy 2) and Locust 2.47 needs gevent 26: it cannot be installed
  beside the harness at all, and every older release also pins `numpy<2`.
* Apache Otava 0.8.0 (2026-05, incubating, maintained, Python 3.10-3.14): its wheel
  pins `numpy==2.2.*` and `scipy<1.17` (pip would downgrade both project-wide) and
  pulls in google-cloud-bigquery, grpcio, cryptography, slack-sdk, pg8000, dateparser
  and two dozen more (its importers and notifiers): about 30 packages for a detector
  that needs only numpy and scipy.

So the detector is Otava's own code, vendored unchanged (imports aside) in
`harness/analysis/vendor/otava/` with its licence, the way the report vendors uPlot:
its E-divisive split, its t-test significance and its merge step, with its defaults
(window 50, p < 0.001, no minimum magnitude). This module only adapts: values in
(None/NaN skipped), change points with their indices in the input and the two sides'
means out. Pure: no I/O.

Measured (`measure()`, seeded, the same on every machine; 4 s:
`python -c "from harness.analysis.changepoints import measure; print(measure())"`):
on 200 flat series of 40 normal values, 3 false alarms in all (2 of the 200 series had
any, 1%). On 200 series of 40 with a step at run 20, the change was found at exactly
that run / within one run of it: 1 sigma 16.5% / 28.5%, 2 sigma 61.5% / 85.5%,
3 sigma 81% / 96%, 4 sigma 95% / 99.5%; change points further than one run from the
step, over the 200 series: 55, 31, 12, 11 (a step makes the noise around it look
like more steps now and then).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from harness.analysis.vendor.otava.analysis import compute_change_points

MAX_PVALUE = 0.001
"""Otava's default: a change point is kept when its t-test p-value is below this."""
WINDOW = 50
"""Otava's default sliding window (runs); longer histories are split in overlapping windows."""
MIN_POINTS = 4
"""Fewer values than this: no test can find anything, so none is looked for."""


@dataclass(frozen=True)
class ChangePoint:
    """One level shift: `index` is the first run of the new level, in the input series
    (missing values counted), with both sides' means and the test's p-value, so the page
    can say "p95 +42% (31.0 -> 44.0 ms) from run X on"."""

    index: int
    before: float
    after: float
    pvalue: float

    @property
    def change(self) -> float:
        """Relative change, after / before - 1 (infinite when before is 0)."""
        if self.before == 0:
            return 0.0 if self.after == 0 else math.copysign(math.inf, self.after)
        return self.after / self.before - 1.0


def _present(values: Sequence[float | None]) -> tuple[list[int], list[float]]:
    at, kept = [], []
    for i, v in enumerate(values):
        if v is not None and math.isfinite(v):
            at.append(i)
            kept.append(float(v))
    return at, kept


def detect(values: Sequence[float | None], *, max_pvalue: float = MAX_PVALUE,
           min_magnitude: float = 0.0, window: int = WINDOW) -> list[ChangePoint]:
    """The change points of `values` (one per run, oldest first), in order.

    Missing values (None, NaN, infinity: a run without that endpoint) are left out of
    the test and the indices map back to the input. `min_magnitude`: also drop points
    whose relative change is smaller (0: significance alone decides, Otava's default)."""
    at, kept = _present(values)
    if len(kept) < MIN_POINTS or max(kept) == min(kept):
        return []
    points, _ = compute_change_points(kept, window_len=window, max_pvalue=max_pvalue,
                                      min_magnitude=min_magnitude)
    return [ChangePoint(index=at[cp.index], before=float(cp.stats.mean_before()),
                        after=float(cp.stats.mean_after()), pvalue=float(cp.stats.pvalue))
            for cp in points]


def measure(trials: int = 200, n: int = 40, step_at: int = 20,
            sigmas: Sequence[float] = (1, 2, 3, 4), seed: int = 0) -> dict:
    """How the detector behaves on series where the truth is known (the docstring's
    figures): false alarms over `trials` flat normal series of `n` values, and for each
    step size (in standard deviations) the share of series whose change was found at
    exactly `step_at` and within one run of it, and how many change points were
    reported further away (false alarms around a real change)."""
    rng = np.random.default_rng(seed)
    flat = [detect((100 + rng.normal(0, 1, n)).tolist()) for _ in range(trials)]
    out: dict = {"trials": trials, "n": n,
                 "flat_false_alarms": sum(len(f) for f in flat),
                 "flat_series_with_any": sum(1 for f in flat if f), "steps": {}}
    for sigma in sigmas:
        exact = near = extra = 0
        for _ in range(trials):
            series = 100 + rng.normal(0, 1, n)
            series[step_at:] += sigma
            points = detect(series.tolist())
            exact += any(p.index == step_at for p in points)
            near += any(abs(p.index - step_at) <= 1 for p in points)
            extra += sum(abs(p.index - step_at) > 1 for p in points)
        out["steps"][sigma] = {"exact": exact / trials, "within_1": near / trials,
                               "elsewhere": extra}
    return out
