"""Pooling runs' estimates (harness.analysis.pooling) on synthetic runs whose truth is known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.analysis.pooling import POCOCK_Z, Z95, RunChange, pool

LIMIT = 0.05  # "the overview p95 must not rise by more than 5%"


def run_of(d: float, se: float) -> RunChange:
    """A run whose log-ratio estimate is `d`, with a 95% interval `se` wide per unit z."""
    return RunChange(math.expm1(d), math.expm1(d - Z95 * se), math.expm1(d + Z95 * se))


def test_equal_runs_that_agree_pool_to_their_value_with_a_narrower_interval():
    one = run_of(math.log1p(0.03), 0.015)
    p = pool([one, one, one, one])
    assert p.change == pytest.approx(0.03)
    assert p.se == pytest.approx(0.015 / 2)
    assert p.tau2 == 0 and p.q == pytest.approx(0)
    assert p.high < one.high


def test_a_precise_run_weighs_more_than_a_noisy_one():
    p = pool([run_of(0.0, 0.01), run_of(0.10, 0.03)])
    assert 0.0 < math.log1p(p.change) < 0.05  # nearer the precise run's 0


def test_runs_that_disagree_beyond_their_noise_widen_the_pool():
    apart = [run_of(-0.05, 0.01), run_of(0.05, 0.01), run_of(0.0, 0.01)]
    p = pool(apart)
    assert p.tau2 > 0
    assert p.se > 0.01 / math.sqrt(3) * 2  # far wider than the fixed-effect SE


def test_a_bad_interval_is_refused():
    with pytest.raises(ValueError):
        pool([RunChange(0.05, 0.06, 0.07)])
    with pytest.raises(ValueError):
        pool([])


def sequential_claims(rng, true: float, looks: list[tuple[float, bool]], ses: list[float],
                      sims: int = 20_000) -> float:
    """The share of simulated studies that claim "under LIMIT" at some look. Look k is
    `(boundary, pooled)`: run k judged alone, or runs 1..k pooled, at `boundary`; run
    k's estimate is N(log(1 + true), `ses[k - 1]`) (every run is drawn, so one seed
    gives the same first runs whatever the number of looks)."""
    claims = 0
    estimates = rng.normal(math.log1p(true), ses, size=(sims, len(ses)))
    for row in estimates:
        for k, (boundary, pooled) in enumerate(looks, start=1):
            runs = [run_of(d, se) for d, se in zip(row[:k], ses[:k], strict=True)]
            if pool(runs if pooled else runs[-1:], z=boundary).high < LIMIT:
                claims += 1
                break
    return claims / sims


def test_three_looks_at_95_percent_claim_too_often_and_pococks_boundary_does_not():
    """With the truth exactly at the limit every claim is false: judged at 95% after
    each of three runs, the pool claims in about 5% of studies (twice the 2.5% a single
    look has); at Pocock's 2.289 in 2.5%."""
    rng = np.random.default_rng(20261207)
    naive = sequential_claims(rng, LIMIT, [(Z95, True)] * 3, [0.014] * 3)
    pocock = sequential_claims(rng, LIMIT, [(POCOCK_Z[3], True)] * 3, [0.014] * 3)
    assert 0.042 < naive < 0.062, naive
    assert 0.019 < pocock < 0.029, pocock


TRACING_LOOKS_SE = [0.0209, 0.0145, 0.0133, 0.0145]
"""The standard errors of the tracing-overhead runs in docs/tracing-notes.md (c93a8cb,
3ab4038, 1eafa39, and the fourth run's expected)."""
TRACING_LOOKS_MADE = [(Z95, False), (Z95, False), (POCOCK_Z[3], True)]
"""How they were judged: the first two runs each on its own 95% interval, then the pool
of three at Pocock's boundary for three looks."""
TRACING_RUNS_SEEN = [RunChange(0.031, -0.009, 0.073), RunChange(0.035, 0.007, 0.064),
                     RunChange(0.035, 0.009, 0.061)]
"""Their recorded overview p95 changes and 95% intervals."""


def test_the_tracing_overheads_actual_sequence_of_looks_and_its_error():
    """The looks docs/tracing-notes.md made, then a fourth: the pool of four at Pocock's
    boundary for four looks. At the limit the sequence claims in about 5%, twice the
    nominal 2.5% (the first two looks at 95% spent it), and the fourth look adds well
    under a point; from the start, at a true +3.4%, it claims in about two studies of five."""
    fourth = [*TRACING_LOOKS_MADE, (POCOCK_Z[4], True)]
    three = sequential_claims(np.random.default_rng(8), LIMIT, TRACING_LOOKS_MADE,
                              TRACING_LOOKS_SE)
    four = sequential_claims(np.random.default_rng(8), LIMIT, fourth, TRACING_LOOKS_SE)
    assert 0.038 < three < 0.060, three
    assert three <= four < three + 0.01, (three, four)  # the same studies, one look more
    power = sequential_claims(np.random.default_rng(9), 0.034, fourth, TRACING_LOOKS_SE)
    assert 0.30 < power < 0.50, power


def test_the_fourth_looks_chance_given_the_three_runs_seen():
    """What the fourth run can do now that three are known: the pool of four at
    Pocock's 2.361 ends under the limit in about 30% of simulated fourth runs if the
    truth is +3.4%, about 70% if it is 0, and under 5% if it is +5%."""
    se = TRACING_LOOKS_SE[3]

    def chance(true: float, rng, sims: int = 4_000) -> float:
        draws = rng.normal(math.log1p(true), se, size=sims)
        return float(np.mean([pool([*TRACING_RUNS_SEEN, run_of(d, se)],
                                   z=POCOCK_Z[4]).high < LIMIT for d in draws]))

    rng = np.random.default_rng(10)
    assert 0.62 < chance(0.0, rng) < 0.80
    assert 0.22 < chance(0.034, rng) < 0.38
    assert chance(LIMIT, rng) < 0.07


def test_the_pooled_interval_covers_the_truth_at_least_95_percent_of_the_time():
    """Slightly more (about 96.6% with three runs): when chance alone spreads the runs,
    the between-run variance comes out above zero and widens the interval."""
    rng = np.random.default_rng(7)
    true, hits, sims = 0.034, 0, 4_000
    for _ in range(sims):
        ses = rng.uniform(0.01, 0.02, size=3)
        p = pool([run_of(rng.normal(math.log1p(true), s), s) for s in ses])
        hits += p.low <= true <= p.high
    assert 0.94 < hits / sims < 0.975
