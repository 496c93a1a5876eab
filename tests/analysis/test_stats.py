"""The gate's statistical core: exact quantiles from blocks, a reproducible block
bootstrap, Hodges-Lehmann bounds, Holm, and each verdict rule on known truth."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats as sps

from harness import hdr
from harness.analysis import blocks as bl
from harness.analysis import rounds as rd
from harness.analysis import stats as st
from harness.analysis import verdicts as vd

PERCENTILES = (0, 1, 25, 50, 90, 95, 99, 99.9, 99.99, 100)


def histogram(values_us) -> hdr.HdrHistogram:
    h = hdr.new_histogram()
    values, counts = np.unique(np.rint(values_us).astype(np.int64), return_counts=True)
    for v, c in zip(values.tolist(), counts.tolist()):
        hdr.record(h, v, c)
    return h


def windows(rng: np.random.Generator, n: int, rate: float, median_ms: float,
            sigma: float = 0.6) -> list[hdr.HdrHistogram]:
    return [histogram(np.exp(rng.normal(math.log(median_ms * 1000), sigma, rng.poisson(rate))))
            for _ in range(n)]


# ---------------------------------------------------------------- blocks


def test_bucket_values_are_hdrhistograms_for_every_index():
    h = hdr.new_histogram()
    lowest, highest = bl.bucket_values(bl.Layout.of(h))
    for i in range(h.counts_len):
        v = h.get_value_from_index(i)
        assert lowest[i] == h.get_lowest_equivalent_value(v)
        assert highest[i] == h.get_highest_equivalent_value(v)


def test_quantiles_from_the_block_matrix_equal_hdrhistograms():
    rng = np.random.default_rng(11)
    run = windows(rng, 37, 40, 20, sigma=1.2)  # 1 µs .. seconds: many bucket sizes
    base, cur = bl.block_pair(bl.window_counts(run), bl.window_counts(run[:20]), block_s=5)
    assert base.n_blocks == 7 and base.dropped == 2 and cur.dropped == 0
    whole = hdr.merge(run)
    assert np.array_equal(bl.quantiles(base.total, base.grid, PERCENTILES),
                          [whole.get_value_at_percentile(p) for p in PERCENTILES])
    for j in range(base.n_blocks):  # every block is the exact merge of its windows
        block = hdr.merge(run[5 * j:5 * j + 5])
        assert np.array_equal(bl.quantiles(base.counts[j], base.grid, PERCENTILES),
                              [block.get_value_at_percentile(p) for p in PERCENTILES])


def test_quantiles_of_a_single_value_and_of_nothing():
    one = histogram([123_456.0])
    side, _ = bl.block_pair(bl.window_counts([one]), bl.window_counts([]), block_s=1)
    assert list(bl.quantiles(side.total, side.grid, PERCENTILES)) == [
        one.get_value_at_percentile(p) for p in PERCENTILES]
    empty, _ = bl.block_pair(bl.window_counts([None, ""]), bl.window_counts([]), block_s=1)
    assert list(bl.quantiles(empty.total, empty.grid, [50, 100])) == [0, 0]


def test_window_counts_reads_encodings_empties_and_refuses_other_layouts():
    rng = np.random.default_rng(2)
    run = windows(rng, 6, 30, 10)
    mixed = [run[0], hdr.encode(run[1]), None, "", hdr.new_histogram(), hdr.encode(run[5])]
    wc = bl.window_counts(mixed)
    assert len(wc) == 6 and wc.total == sum(run[i].get_total_count() for i in (0, 1, 5))
    assert [len(i) for i in wc.index[2:5]] == [0, 0, 0]
    other = hdr.HdrHistogram(1, 1_000_000, 2)
    other.record_value(10)
    with pytest.raises(ValueError, match="layouts"):
        bl.window_counts([run[0], other])


def test_rounds_make_blocks_that_never_span_two_runs():
    rng = np.random.default_rng(3)
    r1, r2 = windows(rng, 12, 20, 10), windows(rng, 8, 20, 10)
    base, _ = bl.block_pair([bl.window_counts(r1), bl.window_counts(r2)],
                            bl.window_counts(r1), block_s=5)
    assert base.n_blocks == 2 + 1 and base.dropped == 2 + 3 and base.rounds == 2
    third = hdr.merge(r2[:5])
    assert np.array_equal(bl.quantiles(base.counts[2], base.grid, [50, 99]),
                          [third.get_value_at_percentile(50), third.get_value_at_percentile(99)])
    assert base.requests == sum(h.get_total_count() for h in r1 + r2)


# ---------------------------------------------------------------- bootstrap


def test_resampled_quantiles_are_exactly_those_of_the_re_merged_histograms():
    rng = np.random.default_rng(4)
    run = windows(rng, 60, 25, 15, sigma=0.7)
    side, _ = bl.block_pair(bl.window_counts(run), bl.window_counts([]))
    weights = rng.multinomial(side.n_blocks, np.full(side.n_blocks, 1 / side.n_blocks),
                              size=1000).astype(float)
    cum = np.cumsum(side.counts, axis=1)
    found = st.resampled_quantile_indices([cum], weights, PERCENTILES)[0]
    full = weights @ cum  # brute force: every bucket of every resample
    for j, p in enumerate(PERCENTILES):
        target = bl.target_counts(full[:, -1], p)
        assert np.array_equal(found[j], (full < target[:, None]).sum(axis=1))
    blocks = [hdr.merge(run[5 * j:5 * j + 5]) for j in range(side.n_blocks)]
    for row in range(3):  # and HdrHistogram itself agrees
        merged = hdr.merge(b for b, w in zip(blocks, weights[row]) for _ in range(int(w)))
        for j, p in enumerate(PERCENTILES):
            values = side.grid.highest if p else side.grid.lowest
            assert values[found[j][row]] == merged.get_value_at_percentile(p)


def test_bootstrap_is_reproducible_with_a_seed_and_shares_blocks_across_endpoints():
    rng = np.random.default_rng(5)
    a = [bl.block_pair(bl.window_counts(windows(rng, 60, r, 20)),
                       bl.window_counts(windows(rng, 60, r, 20))) for r in (10, 3)]
    one = st.bootstrap_quantiles(*a[0], seed=9)
    again = st.bootstrap_quantiles(*a[0], seed=9)
    other = st.bootstrap_quantiles(*a[0], seed=10)
    both = st.bootstrap_pairs(a, seed=9)
    for p in (50, 95, 99):
        assert np.array_equal(one[p].draws, again[p].draws) and one[p].se == again[p].se
        assert np.array_equal(one[p].draws, both[0][p].draws)  # same blocks, same resamples
        assert not np.array_equal(one[p].draws, other[p].draws)
        assert other[p].se == pytest.approx(one[p].se, rel=0.2)
        assert len(one[p].draws) == st.DEFAULT_RESAMPLES


def test_bootstrap_point_estimate_and_error_on_known_lognormal_data():
    rng = np.random.default_rng(6)
    base_w, cur_w = windows(rng, 300, 40, 20, 0.5), windows(rng, 300, 40, 26, 0.5)
    base, cur = bl.block_pair(bl.window_counts(base_w), bl.window_counts(cur_w))
    eff = st.bootstrap_quantiles(base, cur, seed=1)
    for p in (50, 95, 99):
        assert eff[p].baseline == hdr.merge(base_w).get_value_at_percentile(p)
        assert math.exp(eff[p].estimate) == pytest.approx(1.3, rel=0.06)
    # i.i.d. windows: the bootstrap SE matches the asymptotic SE of a log quantile
    n = base.requests
    z = sps.norm.ppf(0.95)
    expected = 0.5 * math.sqrt(0.95 * 0.05 / n) / sps.norm.pdf(z) * math.sqrt(2)
    assert eff[95].se == pytest.approx(expected, rel=0.25)
    assert 40 < eff[95].df < 130  # Welch: about 2 x (60 - 1)


def test_rate_bootstrap_difference_and_ratio():
    rng = np.random.default_rng(7)
    den_b, den_c = rng.poisson(200, 60), rng.poisson(200, 60)
    num_b, num_c = rng.binomial(den_b, 0.80), rng.binomial(den_c, 0.70)
    nb, db, dropped = st.rate_blocks(num_b, den_b, 5)
    nc, dc, _ = st.rate_blocks(num_c, den_c, 5)
    assert dropped == 0 and len(nb) == 12 and nb.sum() == num_b.sum()
    diff = st.bootstrap_rates((nb, db), (nc, dc), seed=3)
    assert diff.estimate == pytest.approx(num_c.sum() / den_c.sum() - num_b.sum() / den_b.sum())
    assert diff.estimate == pytest.approx(-0.10, abs=0.02)
    binomial_se = math.sqrt(0.8 * 0.2 / den_b.sum() + 0.7 * 0.3 / den_c.sum())
    assert diff.se == pytest.approx(binomial_se, rel=0.4)
    again = st.bootstrap_rates((nb, db), (nc, dc), seed=3)
    assert np.array_equal(diff.draws, again.draws)
    ratio = st.bootstrap_rates((nb, db), (nc, dc), scale="log_ratio", seed=3)
    assert math.exp(ratio.estimate) == pytest.approx(0.7 / 0.8, rel=0.03)
    hit = vd.decide([vd.Check("hit ratio", diff, vd.Tolerance(0.05, relative=False,
                                                               higher_is_worse=False))])[0]
    assert hit.verdict == "regressed" and hit.interval[1] < -0.05


# ---------------------------------------------------------------- Hodges-Lehmann


@pytest.mark.parametrize("m,n", [(1, 1), (3, 4), (5, 5), (6, 4), (7, 7)])
def test_mann_whitney_null_distribution_by_counting_is_the_enumerated_one(m, n):
    counts = np.zeros(m * n + 1)
    for chosen in itertools.combinations(range(m + n), m):  # ranks of the m "current" values
        u = sum(r - i for i, r in enumerate(chosen))
        counts[u] += 1
    assert np.allclose(rd.mann_whitney_pmf(m, n), counts / counts.sum())


def test_hodges_lehmann_estimate_and_bounds_against_brute_force_and_scipy():
    rng = np.random.default_rng(8)
    base = np.exp(rng.normal(math.log(100), 0.05, 6))
    cur = np.exp(rng.normal(math.log(120), 0.05, 7))
    hl = rd.hodges_lehmann(base, cur)
    d = sorted(math.log(c) - math.log(b) for c in cur for b in base)
    assert hl.estimate == pytest.approx(float(np.median(d)))
    assert hl.unit == "rounds" and (hl.n_base, hl.n_cur) == (6, 7)
    pmf = rd.mann_whitney_pmf(7, 6)
    for alpha in (0.005, 0.025, 0.1):
        k = max(k for k in range(1, 43) if pmf[:k].sum() <= alpha)  # P(U <= k-1) <= alpha
        assert hl.interval(alpha) == pytest.approx((d[k - 1], d[len(d) - k]))
    for margin in (math.log(1.1), math.log(1.15), math.log(1.3)):
        shifted = np.log(cur) - margin
        exact = sps.mannwhitneyu(shifted, np.log(base), alternative="greater", method="exact")
        assert hl.p_greater(margin) == pytest.approx(exact.pvalue)
        below = sps.mannwhitneyu(shifted, np.log(base), alternative="less", method="exact")
        assert hl.p_less(margin) == pytest.approx(below.pvalue)


def test_hodges_lehmann_with_too_few_rounds_has_no_bounds():
    hl = rd.hodges_lehmann([1.0, 1.1], [1.2, 1.3])
    assert hl.interval(0.01) == (-math.inf, math.inf)  # 1 / C(4, 2) = 0.17 > 0.01


# ---------------------------------------------------------------- Holm


def test_holm_on_known_p_values_equals_the_hand_computation():
    p = [0.01, 0.04, 0.03, 0.005]
    adjusted, level = vd.holm(p, 0.05)
    # sorted: 0.005 x4 = 0.02; 0.01 x3 = 0.03; 0.03 x2 = 0.06; 0.04 x1 -> max(0.06, 0.04)
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # rejected: 0.005 (at 0.05/4) and 0.01 (at 0.05/3); the steps stop at 0.05/2
    assert level == pytest.approx([0.05 / 3, 0.05 / 2, 0.05 / 2, 0.05 / 4])
    assert list(adjusted < 0.05) == [True, False, False, True]
    assert vd.holm([0.6, 0.9], 0.05)[0] == pytest.approx([1.0, 1.0])


# ---------------------------------------------------------------- verdicts


def effect(ratio: float, se: float, n: int = 12, df: float = 20.0) -> st.Effect:
    return st.Effect("log_ratio", math.log(ratio), se, df, 100.0, 100.0 * ratio, n, n)


LATENCY = vd.Tolerance(0.15)


def test_verdicts_on_known_truth():
    checks = [vd.Check("slower", effect(1.6, 0.03), LATENCY),
              vd.Check("faster", effect(0.6, 0.03), LATENCY),
              vd.Check("same", effect(1.0, 0.02), LATENCY),
              vd.Check("unsure", effect(1.05, 0.08), LATENCY)]
    out = {v.name: v for v in vd.decide(checks, misrate=0.01)}
    assert [out[n].verdict for n in ("slower", "faster", "same", "unsure")] == [
        "regressed", "improved", "pass", "inconclusive"]
    assert out["slower"].interval[0] > 1.15 and out["slower"].estimate == pytest.approx(1.6)
    assert out["faster"].interval[1] < 1 / 1.15
    assert 1 / 1.15 < out["same"].interval[0] < out["same"].interval[1] < 1.15
    unsure = out["unsure"]
    assert unsure.interval[0] < 1.15 < unsure.interval[1]
    assert unsure.more_data > 1 and unsure.advice.startswith("run about")
    # "run about k x longer": with k times the blocks the interval would just fit inside
    k = unsure.more_data
    longer = effect(1.05, 0.08 / math.sqrt(k * 1.02), n=int(12 * k * 1.02), df=20 * k * 1.02)
    again = vd.decide([vd.Check("unsure", longer, LATENCY)] + checks[:3], misrate=0.01)
    assert again[0].verdict == "pass"
    for v in out.values():  # the interval shown is the one that decided
        assert v.confidence == pytest.approx(1 - 2 * 0.01 / 4, abs=0.01 / 4 * 2 * 3)


def test_a_check_with_too_few_blocks_says_so_and_how_much_longer_whatever_its_interval():
    # 6 blocks a side against the 8 the gate judges on: a change far beyond the tolerance
    # and a change of exactly nothing (se 0) both lack the same length, a third more
    far = vd.decide([vd.Check("far", effect(20.0, 0.2, n=6), LATENCY)], min_blocks=8)[0]
    zero = vd.decide([vd.Check("zero", st.Effect("difference", 0.0, 0.0, 5.0, 0.0, 0.0, 6, 6),
                               vd.Tolerance(0.01, relative=False))], min_blocks=8)[0]
    for v in (far, zero):
        assert v.verdict == "inconclusive" and v.too_short
        assert v.more_data == pytest.approx(8 / 6) and v.advice == "run about 1.3x longer"
    enough = vd.decide([vd.Check("far", effect(20.0, 0.2, n=8), LATENCY)], min_blocks=8)[0]
    assert enough.verdict == "regressed" and not enough.too_short


def test_holm_makes_a_borderline_check_inconclusive_among_many():
    border = effect(1.25, 0.025)  # alone: beyond +15% at 1%; not at 1% / 18
    assert vd.decide([vd.Check("p95", border, LATENCY)])[0].verdict == "regressed"
    many = [vd.Check("p95", border, LATENCY)] + [
        vd.Check(f"other {i}", effect(1.0, 0.06), LATENCY) for i in range(17)]
    first = vd.decide(many)[0]
    assert first.verdict == "inconclusive" and first.p_regressed == pytest.approx(
        min(1.0, 18 * first.raw_p[0]))


def test_too_few_blocks_is_inconclusive_run_longer():
    v = vd.decide([vd.Check("short", effect(2.0, 0.01, n=4), LATENCY)])[0]
    assert v.verdict == "inconclusive" and v.raw_p == (1.0, 1.0, 1.0)
    assert v.more_data >= 2 and "longer" in v.advice


def test_lower_is_worse_and_absolute_tolerances():
    hit = vd.Tolerance(0.05, relative=False, higher_is_worse=False)
    diff = st.Effect("difference", -0.12, 0.01, 30.0, 0.9, 0.78, 12, 12)
    up = st.Effect("difference", +0.12, 0.01, 30.0, 0.78, 0.9, 12, 12)
    same = st.Effect("difference", 0.004, 0.01, 30.0, 0.9, 0.904, 12, 12)
    out = vd.decide([vd.Check("down", diff, hit), vd.Check("up", up, hit),
                     vd.Check("same", same, hit)])
    assert [v.verdict for v in out] == ["regressed", "improved", "pass"]
    throughput = vd.Tolerance(0.05, higher_is_worse=False)  # -5%: ratio 0.95 is the limit
    assert throughput.margin() == pytest.approx(-math.log(0.95))
    assert vd.decide([vd.Check("rps", effect(0.8, 0.02), throughput)])[0].verdict == "regressed"


def test_hodges_lehmann_verdicts_and_more_rounds():
    rng = np.random.default_rng(12)
    base = np.exp(rng.normal(math.log(100), 0.03, 10))
    slower = rd.hodges_lehmann(base, base * 1.5 * np.exp(rng.normal(0, 0.03, 10)))
    same = rd.hodges_lehmann(base, base * np.exp(rng.normal(0, 0.01, 10)))
    few = rd.hodges_lehmann(base[:5], base[5:] * 1.1 * np.exp(rng.normal(0, 0.1, 5)))
    out = vd.decide([vd.Check("slower", slower, LATENCY), vd.Check("same", same, LATENCY),
                     vd.Check("few", few, LATENCY)])
    assert [v.verdict for v in out] == ["regressed", "pass", "inconclusive"]
    assert out[0].interval[0] > 1.15 and out[0].method == "Hodges-Lehmann"
    assert "more rounds a side" in out[2].advice and out[2].more_data > 1
