"""The benchmark gate's statistics and verdicts on synthetic results with known truth.

* Large-sample Hodges-Lehmann (`rounds.LargeHodgesLehmann`): p-values equal
  `scipy.stats.mannwhitneyu(method="asymptotic")`, the estimate and bounds are
  the brute-force order statistics, a known shift is recovered, the A/A
  false-alarm rate is at most the nominal level, a known shift is found.
* The pure gate (`harness.analysis.bench`): regressed, pass, improved,
  inconclusive for too few rounds, Holm across benchmarks, benchmarks on one
  side only, deselected ones, machine mismatch, units.
* Sessions as the unit, on synthetic sessions whose truth is known (each
  session's rounds shifted as a whole by a random per-session factor, as this
  machine's sessions are): rounds as samples false-alarms, sessions do not; a
  real 2x slowdown is found with enough sessions, 5 a side cannot decide a
  suite of 12 and says how many more sessions would; fewer than 5 sessions
  falls back to rounds and says so; the policy's `bench` tolerances.
"""

from __future__ import annotations

import json
import math

import jsonschema
import numpy as np
import pytest
from scipy import stats as sps

from harness.analysis import bench as gb
from harness.analysis import compare
from harness.analysis import rounds as rd
from harness.analysis import verdicts as vd
from harness.errors import ConfigError
from harness.model import policy as pol
from harness.model.bench import BenchmarkRun, BenchSet, parse
from harness.model.gate import json_schema

FILE = "scenarios/benchmarks/test_x.py"
MACHINE = {"python_implementation": "CPython", "python_version": "3.11.7", "system": "Linux",
           "machine": "x86_64", "cpu": {"brand_raw": "AMD EPYC", "count": 2}}


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


# ---------------------------------------------------------------- the pure gate


def quantiles(n: int, median: float, sigma: float = 0.2) -> list[float]:
    """n round times with exactly lognormal quantiles: deterministic, known truth."""
    z = sps.norm.ppf((np.arange(n) + 0.5) / n)
    return np.exp(math.log(median) + sigma * z).tolist()


def bench(name: str, data: list[float], file: str = FILE) -> dict:
    stats = {"min": min(data), "max": max(data), "mean": float(np.mean(data)),
             "median": float(np.median(data)), "rounds": len(data), "iterations": 1,
             "data": data}
    return {"group": None, "name": name, "fullname": f"{file}::{name}", "params": None,
            "param": None, "extra_info": {}, "options": {}, "stats": stats}


def run(*benches: dict, machine: dict | None = None, commit: str = "abc") -> BenchmarkRun:
    doc = {"machine_info": machine or MACHINE, "commit_info": {"id": commit, "dirty": False},
           "datetime": "2026-01-01T00:00:00", "version": "5.3.1", "benchmarks": list(benches)}
    return parse(json.dumps(doc), "test")


SETTINGS = gb.settings_from(pol.Policy())


def gate(base: BenchmarkRun, cur: BenchmarkRun, settings=SETTINGS, **kw):
    g = gb.compare_benchmarks(base, cur, settings, **kw)
    jsonschema.validate(json.loads(g.model_dump_json()), json_schema())
    return g, {c.subject: c for c in g.checks}


def test_known_truth_gives_regressed_pass_improved_and_too_few_rounds_inconclusive():
    base = run(bench("t_slow", quantiles(300, 1e-3)), bench("t_same", quantiles(300, 2e-6)),
               bench("t_fast", quantiles(300, 0.2)), bench("t_few", quantiles(3, 1e-3)))
    cur = run(bench("t_slow", quantiles(300, 1.5e-3)), bench("t_same", quantiles(280, 2e-6)),
              bench("t_fast", quantiles(300, 0.1)), bench("t_few", quantiles(3, 3e-3)))
    g, by = gate(base, cur)
    assert {s: c.verdict for s, c in by.items()} == {
        "t_slow": "regressed", "t_same": "pass", "t_fast": "improved", "t_few": "inconclusive"}
    assert (g.verdict, g.exit_code) == ("regressed", 1)
    assert g.summary.startswith("regressed: bench t_slow")
    slow = by["t_slow"]
    assert slow.kind == "benchmark" and slow.unit == "ms" and slow.tolerance.text == "+15%"
    assert slow.baseline == pytest.approx(1.0) and slow.current == pytest.approx(1.5)
    assert slow.change == pytest.approx(1.5, rel=0.01)
    assert slow.interval[0] > 1.15 and "normal approximation" in slow.method
    assert (by["t_same"].unit, by["t_fast"].unit) == ("µs", "ms")
    assert by["t_fast"].baseline == pytest.approx(200.0)
    assert "more rounds" in by["t_few"].advice and "exact" in by["t_few"].method


def test_holm_across_benchmarks_an_effect_that_alone_regresses_does_not_among_ten():
    margin = math.log(1.15)
    base_t = quantiles(300, 1e-3)

    def p_regressed(shift: float) -> float:
        return rd.hodges_lehmann(base_t, [v * shift for v in base_t]).p_greater(margin)

    lo, hi = 1.15, 1.5  # p_regressed(shift) = 0.002: below 0.01, above 0.01 / 10
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if p_regressed(mid) > 0.002 else (lo, mid)
    shift = hi
    assert 0.001 < p_regressed(shift) <= 0.002
    edge = [bench("t_edge", base_t)], [bench("t_edge", [v * shift for v in base_t])]
    alone, by = gate(run(*edge[0]), run(*edge[1]))
    assert by["t_edge"].verdict == "regressed" and alone.exit_code == 1
    others = [bench(f"t_{i}", quantiles(300, 1e-3 * (i + 1))) for i in range(9)]
    crowd, by = gate(run(*edge[0], *others), run(*edge[1], *others))
    assert by["t_edge"].verdict == "inconclusive" and crowd.exit_code == 0
    assert by["t_edge"].p_value == pytest.approx(10 * p_regressed(shift), rel=1e-6)
    assert all(by[f"t_{i}"].verdict == "pass" for i in range(9))


def test_benchmarks_on_one_side_only_are_inconclusive_with_a_reason():
    base = run(bench("t_gone", quantiles(50, 1e-3)), bench("t_both", quantiles(50, 1e-3)))
    cur = run(bench("t_both", quantiles(50, 1e-3)), bench("t_new", quantiles(50, 1e-3)))
    g, by = gate(base, cur, labels=("baseline main", "current"))
    assert list(by) == ["t_gone", "t_both", "t_new"]
    assert by["t_gone"].verdict == by["t_new"].verdict == "inconclusive"
    assert "not measured in this run" in by["t_gone"].reason
    assert by["t_new"].reason == "new: not in baseline main"
    assert by["t_gone"].baseline == pytest.approx(1.0, rel=1e-3)  # ms
    assert by["t_gone"].current is None and by["t_new"].baseline is None
    assert by["t_new"].current == pytest.approx(1.0, rel=1e-3) and by["t_new"].change is None
    assert (g.verdict, g.exit_code) == ("inconclusive", 0)
    strict = gb.settings_from(pol.parse_policy('[gate]\ninconclusive = "fail"\n'))
    assert gate(base, cur, strict)[0].exit_code == 1


def test_benchmarks_deselected_with_k_are_not_checks():
    base = run(bench("t_a", quantiles(50, 1e-3)), bench("t_b", quantiles(50, 1e-3)),
               bench("t_skipped", quantiles(50, 1e-3)))
    cur = run(bench("t_a", quantiles(50, 1e-3)))
    selected = {f"{FILE}::t_a", f"{FILE}::t_skipped"}  # t_skipped selected but did not run
    _g, by = gate(base, cur, selected=selected)
    assert list(by) == ["t_a", "t_skipped"] and by["t_skipped"].verdict == "inconclusive"
    assert gb.deselected(base, cur, selected) == [f"{FILE}::t_b"]
    assert gb.deselected(base, cur, None) == []


def test_results_of_different_machines_are_refused_unless_allowed():
    other = {**MACHINE, "cpu": {"brand_raw": "Intel Xeon", "count": 8}}
    base, cur = run(bench("t", quantiles(50, 1e-3))), run(bench("t", quantiles(50, 1e-3)),
                                                          machine=other)
    with pytest.raises(ConfigError, match="CPU model: 'AMD EPYC' vs 'Intel Xeon'; CPU count"):
        gb.compare_benchmarks(base, cur, SETTINGS)
    g, _ = gate(base, cur, allow_mismatch=True)
    assert g.allowed_mismatch and len(g.mismatches) == 2


def test_two_benchmarks_of_one_name_are_told_apart_by_node_id_and_zero_times_are_reasons():
    a = bench("t", quantiles(50, 1e-3), "scenarios/benchmarks/test_a.py")
    b = bench("t", quantiles(50, 1e-3), "scenarios/benchmarks/test_b.py")
    zero = bench("t_zero", [0.0, *quantiles(49, 1e-8)])
    _g, by = gate(run(a, b, zero), run(a, b, zero))
    assert set(by) == {"scenarios/benchmarks/test_a.py::t", "scenarios/benchmarks/test_b.py::t",
                       "t_zero"}
    assert "timer's resolution" in by["t_zero"].reason


def test_no_benchmarks_is_a_pass_with_nothing_checked():
    g, by = gate(run(), run())
    assert (g.verdict, g.exit_code, by) == ("pass", 0, {})


def test_display_units():
    assert gb.display_unit(2.0) == ("s", 1.0)
    assert gb.display_unit(0.0065) == ("ms", 1e3)
    assert gb.display_unit(2.5e-6) == ("µs", 1e6)
    assert gb.display_unit(4e-8) == ("ns", 1e9)


def test_the_policy_bench_kind_gives_each_benchmark_its_tolerance_and_advisory_flag():
    base = run(bench("t_noisy", quantiles(300, 1e-3)), bench("t_db", quantiles(300, 1e-3)),
               bench("t_shown", quantiles(300, 1e-3)))
    cur = run(bench("t_noisy", quantiles(300, 1.5e-3)), bench("t_db", quantiles(300, 1.5e-3)),
              bench("t_shown", quantiles(300, 1.5e-3)))
    rules = pol.parse_policy('[tolerances]\nbench = "+20%"\n\n[benchmarks."t_noisy"]\n'
                             'bench = "+100%"\n\n[benchmarks."t_shown"]\n'
                             'bench_advisory = true\n')
    g, by = gate(base, cur, gb.settings_from(rules))
    assert (by["t_noisy"].tolerance.text, by["t_noisy"].verdict) == ("+100%", "pass")
    assert (by["t_db"].tolerance.text, by["t_db"].verdict) == ("+20%", "regressed")
    assert by["t_shown"].advisory and by["t_shown"].verdict == "regressed"
    assert g.summary.startswith("regressed: bench t_db") and "t_shown" not in g.summary
    default = gate(base, cur)[1]["t_noisy"].tolerance
    assert default == pol.tolerance_for(pol.Policy(), "bench", "t_noisy")
    assert default.text == "+15%"


# ---------------------------------------------------------------- sessions as the unit


def sessions(rng: np.random.Generator, n: int, median: float, *, between: float = 0.2,
             rounds: int = 200, within: float = 0.05, name: str = "t_micro",
             extra: tuple[tuple[str, float], ...] = ()) -> BenchSet:
    """`n` sessions of one build: each session's rounds around `median` times a factor
    drawn per session (lognormal, sigma `between`), the rounds themselves with sigma
    `within`: whole sessions move, as on a shared machine. `extra`: more benchmarks
    (name, median) moved by the same session factor."""
    runs = []
    for _ in range(n):
        factor = math.exp(rng.normal(0.0, between))
        runs.append(run(*(bench(nm, lognormal(rng, rounds, med * factor, within).tolist())
                          for nm, med in ((name, median), *extra))))
    return BenchSet(raw_rounds=True, sessions=runs)


def verdicts(base: BenchSet, cur: BenchSet, settings=SETTINGS) -> list[str]:
    return [c.verdict for c in gate(base, cur, settings)[0].checks]


def test_sessions_moving_as_a_whole_false_alarm_as_rounds_and_never_as_sessions():
    """40 A/A gates of one benchmark whose whole sessions move (sigma 0.3 per session,
    0.05 within; this machine's cache benchmarks moved -30% to +73%): the same 7 vs 7
    sessions, their rounds pooled and taken as the samples, say `regressed` in at least
    10% of the gates, the 1 vs 1 gate the harness made before in at least 20%; as
    sessions (each session's median) in none. Nominally: at most 1% (misrate 0.01)."""
    rng = np.random.default_rng(11)
    trials = 40
    as_rounds = as_sessions = single = 0
    for _ in range(trials):
        base, cur = (sessions(rng, 7, 2.5e-6, between=0.3) for _ in range(2))
        as_sessions += verdicts(base, cur) == ["regressed"]
        pooled = [f for _, f in gb.found(base, cur, "rounds")]
        as_rounds += [c.verdict for c in compare.decide(pooled, SETTINGS)] == ["regressed"]
        one = BenchSet(raw_rounds=True, sessions=base.sessions[:1])
        single += verdicts(one, BenchSet(raw_rounds=True, sessions=cur.sessions[:1])) \
            == ["regressed"]
    assert as_rounds / trials >= 0.1 and single / trials >= 0.2
    assert as_sessions == 0


def test_a_real_2x_slowdown_of_every_session_is_found_with_seven_sessions_a_side():
    rng = np.random.default_rng(12)
    found = 0
    for _ in range(40):
        base, cur = sessions(rng, 7, 1e-3), sessions(rng, 7, 2e-3)
        g, by = gate(base, cur)
        found += by["t_micro"].verdict == "regressed"
    assert found >= 38
    check = by["t_micro"]
    assert "per-session medians, 7 vs 7 sessions" in check.method
    assert "exact" in check.method
    assert g.method.startswith("Hodges-Lehmann over per-session medians")
    assert "7 vs 7 sessions" in g.method and "rounds as" not in g.summary
    # the values shown are the medians of the sessions' medians
    meds = [s.benchmarks[0].stats.median for s in cur.sessions]
    factor = {"ms": 1e3, "µs": 1e6}[check.unit]
    assert check.current == pytest.approx(float(np.median(meds)) * factor)


SUITE12 = tuple((f"t_{i:02d}", 1e-3 * (i + 1)) for i in range(11))


def test_five_sessions_a_side_cannot_decide_a_suite_of_twelve_and_says_how_many_would():
    """1 / C(10, 5) = 1/252 > 0.01 / 12: no check of 12 can be decided by 5 vs 5, even a
    tenfold slowdown; 7 vs 7 (1/3432) decides them all."""
    assert gb.min_p(5) == 1 / 252 and gb.min_p(7) == 1 / 3432
    assert gb.sessions_needed(12, 0.01) == 7 == gb.DEFAULT_SESSIONS
    assert [gb.sessions_needed(c, 0.01) for c in (1, 2, 3, 34, 35)] == [5, 5, 6, 7, 8]
    rng = np.random.default_rng(13)
    kw = {"between": 0.02, "rounds": 50, "extra": SUITE12}
    slower = tuple((nm, med * 10) for nm, med in SUITE12)
    for n, expect in ((5, "inconclusive"), (7, "regressed")):
        base = sessions(rng, n, 1e-3, **kw)
        cur = sessions(rng, n, 1e-2, between=0.02, rounds=50, extra=slower)
        _g, by = gate(base, cur)
        assert len(by) == 12 and {c.verdict for c in by.values()} == {expect}
    same = gate(sessions(rng, 5, 1e-3, **kw), sessions(rng, 5, 1e-3, **kw))[1]
    for check in same.values():
        assert check.verdict == "inconclusive"
        assert check.advice.startswith("about 2 more sessions a side; the session medians' "
                                       "spread: "), check.advice


def test_the_advised_sessions_decide_when_the_shift_is_what_it_seems():
    """An A/A gate of 7 vs 7 sessions spread ~10% cannot show +-15%; the advice names x more
    sessions a side; 10 gates of 7 + x sessions a side of the same truth decide (pass) in
    at least 8."""
    rng = np.random.default_rng(19)
    kw = {"between": 0.1, "rounds": 20}
    check = gate(sessions(rng, 7, 2.5e-6, **kw), sessions(rng, 7, 2.5e-6, **kw))[1]["t_micro"]
    assert check.verdict == "inconclusive"
    more = int(check.advice.split()[1])
    assert check.advice.startswith(f"about {more} more sessions a side") and 10 < more < 100
    decided = [verdicts(sessions(rng, 7 + more, 2.5e-6, **kw),
                        sessions(rng, 7 + more, 2.5e-6, **kw)) for _ in range(10)]
    assert decided.count(["pass"]) >= 8


def test_sessions_advice_says_when_it_cannot_tell_or_would_need_too_many():
    tol = pol.Policy().tolerances.bench  # +15%
    tight = np.exp(np.linspace(-0.01, 0.01, 7)) * 1e-3
    wide = np.exp(np.linspace(-2.0, 2.0, 7)) * 1e-3
    on_it = math.log(1.15)
    assert gb.sessions_advice(tight, tight, on_it, tol, 0.005).startswith("cannot tell")
    assert gb.sessions_advice(wide, wide, 0.0, tol, 0.005).startswith(
        "more than 1000 more sessions a side; the session medians' spread: ")
    assert gb.sessions_advice(tight, tight, 0.0, tol, 0.01 / 12).startswith(
        "about 1 more session a side")  # 8 vs 8: the exact test's floor (1/12870)
    assert gb.sessions_advice(tight[:2], tight[:3], 0.0, tol, 0.01) == \
        "about 3 more sessions a side; the session medians' spread: 0.3% sd"  # 5 vs 6


def test_fewer_than_five_sessions_a_side_fall_back_to_rounds_and_say_so():
    rng = np.random.default_rng(14)
    base, cur = sessions(rng, 7, 1e-3), sessions(rng, 4, 1e-3)
    g, by = gate(base, cur)
    assert gb.mode_of(7, 4) == "rounds" and gb.mode_of(5, 5) == "sessions"
    assert "rounds as independent samples" in g.method and "4 vs" not in g.method
    assert "7 vs 4 sessions, fewer than 5 a side" in g.method
    assert "ignores session-to-session variation" in g.method
    assert "ignores session-to-session variation" in g.summary
    check = by["t_micro"]
    assert "rounds as samples, 1400 vs 800 rounds" in check.method  # every session pooled
    few = gate(sessions(rng, 5, 1e-3, rounds=3), sessions(rng, 1, 1e-3, rounds=3))[1]
    assert few["t_micro"].advice.endswith("more rounds a side")  # rounds are the unit here


def test_rounds_mode_needs_the_raw_rounds_and_is_refused_without_them():
    rng = np.random.default_rng(15)
    full = sessions(rng, 7, 1e-3)
    slim = BenchSet.of(full.sessions, keep_rounds=False)
    assert gb.plan(slim, 7) == "sessions" and gb.plan(full, 3) == "rounds"
    with pytest.raises(ConfigError, match=r"baseline main holds 7 session\(s\) without raw "
                                          r"rounds.*--sessions 5 or more.*--keep-data"):
        gb.plan(slim, 3, baseline_label="baseline main")
    with pytest.raises(ConfigError, match="without raw rounds"):
        gb.compare_benchmarks(slim, sessions(rng, 2, 1e-3), SETTINGS)
    # sessions mode reads only the medians: the slim set gates as the full one does
    cur = sessions(rng, 7, 1e-3)
    assert gate(slim, cur)[0].checks == gate(full, cur)[0].checks


def test_sessions_of_different_machines_are_refused_even_within_one_side():
    rng = np.random.default_rng(16)
    mixed = sessions(rng, 5, 1e-3)
    other = {**MACHINE, "cpu": {"brand_raw": "Intel Xeon", "count": 2}}
    mixed.sessions[2] = run(bench("t_micro", quantiles(50, 1e-3)), machine=other)
    with pytest.raises(ConfigError, match="CPU model: 'AMD EPYC' / 'Intel Xeon' vs 'AMD EPYC'"):
        gb.compare_benchmarks(mixed, sessions(rng, 5, 1e-3), SETTINGS)
