"""The benchmark gate's statistics on synthetic samples with known truth.

* Large-sample Hodges-Lehmann (`rounds.LargeHodgesLehmann`): p-values equal
  `scipy.stats.mannwhitneyu(method="asymptotic")`, the estimate and bounds are
  the brute-force order statistics, a known shift is recovered, the A/A
  false-alarm rate is at most the nominal level, a known shift is found.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from harness.analysis import rounds as rd
from harness.analysis import verdicts as vd

# ---------------------------------------------------------------- large-sample Hodges-Lehmann


def lognormal(rng: np.random.Generator, n: int, median: float = 1e-3, sigma: float = 0.3,
              digits: int | None = None) -> np.ndarray:
    x = np.exp(rng.normal(math.log(median), sigma, n))
    return np.round(x, digits) if digits is not None else x


def test_small_samples_keep_the_exact_path_and_large_ones_switch():
    rng = np.random.default_rng(1)
    small = rd.hodges_lehmann(lognormal(rng, 50), lognormal(rng, 50))  # 2,500 pairs
    large = rd.hodges_lehmann(lognormal(rng, 51), lognormal(rng, 50))
    assert type(small) is rd.HodgesLehmann and small.differences is not None
    assert isinstance(large, rd.LargeHodgesLehmann) and large.differences is None


@pytest.mark.parametrize("digits", [None, 5])  # 5 decimals of a ~1 ms time: many ties
def test_large_sample_p_values_are_scipys_asymptotic_mann_whitney(digits):
    rng = np.random.default_rng(2)
    base, cur = lognormal(rng, 400, digits=digits), lognormal(rng, 300, 1.05e-3, digits=digits)
    hl = rd.hodges_lehmann(base, cur)
    lb, lc = np.log(base), np.log(cur)
    for m in (0.0, 0.03, math.log(1.15), -0.1):
        for alternative, mine in (("greater", hl.p_greater(m)), ("less", hl.p_less(m))):
            ref = sps.mannwhitneyu(lc - m, lb, alternative=alternative, method="asymptotic")
            assert mine == pytest.approx(float(ref.pvalue), rel=1e-9, abs=1e-300)


def test_large_sample_estimate_and_bounds_are_the_order_statistics_of_all_differences():
    rng = np.random.default_rng(3)
    base, cur = lognormal(rng, 301), lognormal(rng, 250, 1.2e-3)
    hl = rd.hodges_lehmann(base, cur)
    d = np.sort((np.log(cur)[:, None] - np.log(base)[None, :]).ravel())
    assert hl.estimate == float(np.median(d))
    for alpha in (0.0005, 0.005, 0.025, 0.1):
        k = hl._rank(alpha)
        z = sps.norm.ppf(alpha)
        assert k == math.floor(len(d) / 2 + 0.5 + z * hl.sigma_u)  # the asymptotic rank
        assert hl.interval(alpha) == (d[k - 1], d[len(d) - k])
    for k in (1, 2, 17, len(d) // 2, len(d) - 1, len(d)):
        assert rd.order_statistic(np.sort(np.log(cur)), np.sort(np.log(base)), k) == d[k - 1]


def test_large_sample_bounds_agree_with_the_exact_ones_where_both_apply():
    rng = np.random.default_rng(4)
    base, cur = lognormal(rng, 40), lognormal(rng, 40, 1.1e-3)
    exact = rd.hodges_lehmann(base, cur)  # 1,600 pairs: exact
    large = rd._large(np.log(base), np.log(cur), exact.se, "log_ratio",
                      lambda v: float(np.exp(np.median(v))))
    assert large.estimate == pytest.approx(exact.estimate)
    for alpha in (0.005, 0.025):
        assert large.interval(alpha) == pytest.approx(exact.interval(alpha), abs=0.02)
        assert large.p_greater(0.0) == pytest.approx(exact.p_greater(0.0), rel=0.1)


def test_the_estimate_recovers_a_known_shift_of_tens_of_thousands_of_rounds():
    rng = np.random.default_rng(5)
    base = lognormal(rng, 20_000, 2.5e-6, 0.4)
    cur = lognormal(rng, 15_000, 2.5e-6 * 1.2, 0.4)
    hl = rd.hodges_lehmann(base, cur)  # 3 * 10^8 pairs, never built
    assert math.exp(hl.estimate) == pytest.approx(1.2, rel=0.01)
    lo, hi = hl.interval(0.005)
    assert math.exp(lo) < 1.2 < math.exp(hi) and math.exp(hi) - math.exp(lo) < 0.05
    assert math.isfinite(hl.more_data(0.01, 0.001))  # no overflow at these sizes


def test_a_a_false_alarm_rate_is_at_most_the_nominal_level():
    """1,000 A/A pairs of 200 rounds (the large-sample path): the one-sided test at 5%
    rejects at most 5% (plus 3 binomial SE), and the 90% interval covers the truth."""
    rng = np.random.default_rng(6)
    trials, alpha = 1000, 0.05
    rejected = covered = 0
    for _ in range(trials):
        hl = rd.hodges_lehmann(lognormal(rng, 200), lognormal(rng, 200))
        rejected += hl.p_greater(0.0) < alpha
        lo, hi = hl.interval(alpha)
        covered += lo <= 0.0 <= hi
    se = math.sqrt(alpha * (1 - alpha) / trials)
    assert rejected / trials <= alpha + 3 * se
    assert covered / trials >= 1 - 2 * alpha - 3 * se


def test_the_gate_never_flags_a_a_and_always_flags_a_known_shift():
    """Through the verdicts, +15% tolerance, misrate 0.01: 200 A/A gates of 300 rounds a
    side flag nothing; a 1.3x slowdown is `regressed` in at least 95% of 200 trials."""
    rng = np.random.default_rng(7)
    tol = vd.Tolerance(0.15)
    false_alarms = found = 0
    for _ in range(200):
        same = rd.hodges_lehmann(lognormal(rng, 300), lognormal(rng, 300))
        slower = rd.hodges_lehmann(lognormal(rng, 300), lognormal(rng, 300, 1.3e-3))
        false_alarms += vd.decide([vd.Check("a", same, tol)])[0].verdict == "regressed"
        found += vd.decide([vd.Check("b", slower, tol)])[0].verdict == "regressed"
    assert false_alarms == 0
    assert found / 200 >= 0.95
