"""A/B rounds paired by round, on built runs whose truth is known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.analysis.checks import RunData
from harness.analysis.paired import combine, compare_paired
from harness.analysis.stats import Effect
from harness.errors import ConfigError
from tests.analysis.test_compare import settings
from tests.builders import EndpointSpec, LogNormal, build_run

OVERVIEW, AGENTS = "GET /api/v1/dashboard/overview", "GET /api/v1/agents"
P95 = f"p95 {OVERVIEW}"


def run(seed: int, machine: float = 1.0, overview_ms: float = 20.0, seconds: int = 60,
        agents: bool = True, toggles: dict | None = None) -> RunData:
    """A run on a machine `machine` times slower than usual (a slower round)."""
    endpoints = {OVERVIEW: EndpointSpec(rps=40, latency_ms=LogNormal(overview_ms * machine))}
    if agents:
        endpoints[AGENTS] = EndpointSpec(rps=30, latency_ms=LogNormal(12.0 * machine))
    built = build_run(endpoints, seconds=seconds, seed=seed, toggles=toggles)
    return RunData(built.result, built.log)


def effect(estimate: float, se: float, df: float = 10.0, n: int = 12) -> Effect:
    return Effect("log_ratio", estimate, se, df, 1.0, math.exp(estimate), n, n)


def test_combine_averages_the_rounds_and_adds_their_variances():
    e = combine([effect(0.1, 0.04), effect(0.3, 0.03)])
    assert e.estimate == pytest.approx(0.2)
    assert e.se == pytest.approx(math.sqrt(0.04 ** 2 + 0.03 ** 2) / 2)
    # Welch-Satterthwaite: between the rounds' own df and their sum
    assert 10 < e.df <= 20
    assert (e.n_base, e.n_cur) == (24, 24)
    assert combine([effect(0.1, 0.04)]) == effect(0.1, 0.04)


def test_with_five_rounds_the_spread_between_rounds_counts_when_it_is_larger():
    scattered = [effect(d, 0.01) for d in (0.0, 0.2, -0.2, 0.1, -0.1)]
    e = combine(scattered)
    assert e.se == pytest.approx(np.std([0.0, 0.2, -0.2, 0.1, -0.1], ddof=1) / math.sqrt(5))
    assert e.df == 4
    tight = [effect(d, 0.2) for d in (0.0, 0.01, -0.01, 0.0, 0.0)]
    assert combine(tight).se == pytest.approx(math.sqrt(5 * 0.2 ** 2) / 5)
    # four rounds: not enough to estimate a spread; the rounds' own SEs only
    assert combine(scattered[:4]).se == pytest.approx(math.sqrt(4 * 0.01 ** 2) / 4)


def test_an_infinite_se_in_any_round_makes_the_combination_undecidable():
    e = combine([effect(0.1, 0.04), effect(0.2, math.inf)])
    assert math.isinf(e.se)


def test_a_slower_b_regresses_although_the_machine_changes_speed_between_rounds():
    # rounds on a machine that gets 40% slower, then faster again: unpaired, A of round 2
    # is slower than B of round 1; paired, every round shows B 60% slower
    machine = [1.0, 1.4, 0.8]
    pairs = [(run(10 + i, m), run(20 + i, m, overview_ms=32.0)) for i, m in enumerate(machine)]
    out = compare_paired(pairs, settings())
    p95 = next(c for c in out.gate.checks if c.name == P95)
    assert p95.verdict == "regressed" and out.gate.exit_code == 1
    assert 1.45 < p95.change < 1.75 and p95.interval[0] > 1.15
    agents = next(c for c in out.gate.checks if c.name == f"p95 {AGENTS}")
    assert agents.verdict != "regressed"
    assert "paired by round over 3" in out.gate.method
    assert len(out.rounds) == 3 and all(1.4 < r[P95] < 1.85 for r in out.rounds)


def test_a_and_b_of_the_same_build_never_regress():
    for trial in range(5):
        pairs = [(run(100 * trial + i, m), run(100 * trial + 50 + i, m))
                 for i, m in enumerate((1.0, 1.3))]
        out = compare_paired(pairs, settings())
        assert not [c for c in out.gate.checks if c.verdict == "regressed"], trial
        assert out.gate.exit_code == 0


def test_a_check_missing_in_one_round_is_inconclusive_and_says_which():
    pairs = [(run(1), run(2)), (run(3), run(4, agents=False))]
    out = compare_paired(pairs, settings())
    agents = next(c for c in out.gate.checks if c.name == f"p95 {AGENTS}")
    assert agents.verdict == "inconclusive" and "round(s) 2" in agents.reason
    assert "round(s)" not in next(c for c in out.gate.checks if c.name == P95).reason


def test_both_sides_are_described_and_toggles_that_differ_are_shown():
    pairs = [(run(1, toggles={"response_cache": True}),
              run(2, toggles={"response_cache": False}))]
    gate = compare_paired(pairs, settings(), labels=("A profile:optimized",
                                                     "B toggles:response_cache=false")).gate
    assert gate.baseline.label == "A profile:optimized"
    assert gate.current.toggles == {"response_cache": False}
    assert gate.baseline.toggles == {"response_cache": True}


def test_rounds_of_different_load_are_refused_unless_allowed():
    other = build_run({OVERVIEW: EndpointSpec(rps=40)}, seconds=60, seed=5, users=99)
    pairs = [(run(1), RunData(other.result, other.log))]
    with pytest.raises(ConfigError, match="users"):
        compare_paired(pairs, settings())
    assert compare_paired(pairs, settings(), allow_mismatch=True).gate.allowed_mismatch
    with pytest.raises(ConfigError):
        compare_paired([], settings())
