"""The whole gate against known truth: simulated runs (`tests/sim.py`), seeded.

Gate: every endpoint's p50, p95 and p99 (18 checks), tolerances +15%, +15%,
+25%, misrate 0.01, Holm across all checks, 5 s blocks. Trials:

* A/A: baseline and current drawn independently from the same model (500
  trials): any `regressed` is a false alarm. Measured: 0 / 500.
* Shifted: the same trial with every latency of the busiest endpoint x1.25,
  x1.10 (and x3, the size the gate does detect in 60 s) in the current run;
  the shifted runs reuse the A/A trial's random numbers (common random
  numbers), so the other 15 checks, which enter Holm's adjustment, are those
  of the A/A trial. Power: the fraction of trials whose busiest-endpoint p95
  is `regressed`.

What 60 s at ~30 requests/s can and cannot tell. The issue asks for 95%
power at a 25% p95 shift with a +15% tolerance. At these sizes that is out of
reach for any method that keeps the false-alarm bound: the busiest endpoint's
p95 rests on ~30 requests above it, and the model's bursts (3% of seconds
2-4x slower, so 0-5 burst seconds a run) move it by ~14% (sd of the A/A log
ratio: 0.144; without bursts 0.078). Deciding "beyond +15%" for a true +25%
at Holm's first level (0.01 / 18) with 95% power needs an sd of ~0.017.
Measured here (500 trials): power 0.006 at x1.25, 0 at x1.10, 0.948 at x3.
Measured with the same model and gate (100 trials each unless said; A/A
false alarms 0 in every configuration):

    run length, change                    power at x1.25
    60 s                                   0.006 (500 trials, 2000 resamples too)
    60 s, gate of the busiest p95 only     0.05
    5 rounds x 60 s a side, pooled blocks  0.02
    10 min                                 0.12
    20 min                                 0.35
    40 min                                 0.61
    40 min, busiest p95 only               0.88
    70 min                                 0.95 (60 trials)
    16 min, p95 tolerance +5%              0.90
    20 min, p95 tolerance +5%              0.94

So 95% at x1.25 takes ~70-minute runs at +15%, or ~20+ minutes with a +5%
p95 tolerance; Hodges-Lehmann over rounds would need ~70 rounds a side (the
run-level p95 is as noisy). Never by weakening the false-alarm bound.

Bootstrap resamples: 500 per check in these trial loops (2000 is the
default). The p-values use the bootstrap's standard error, not its tail
counts, so 500 resamples change the SE by ~3%: `test_fewer_resamples_...`
checks that the verdicts of 40 A/A trials are the same at 500 and 2000.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from harness.analysis import blocks as bl
from harness.analysis import stats as st
from harness.analysis import verdicts as vd
from tests import sim

TRIALS = 500
MISRATE = 0.01
CHECKS = ((50, vd.Tolerance(0.15)), (95, vd.Tolerance(0.15)), (99, vd.Tolerance(0.25)))
SHIFTS = (1.25, 1.10, 3.0)
RESAMPLES = 500


def run_pair(trial: int, shift: dict[str, float] | None = None):
    base = sim.simulate_counts(np.random.default_rng([trial, 0]))
    cur = sim.simulate_counts(np.random.default_rng([trial, 1]), shift=shift)
    return base, cur


def effects(base, cur, keys, resamples=RESAMPLES, seed=0) -> dict[str, dict[float, st.Effect]]:
    pairs = [bl.block_pair(base[k], cur[k]) for k in keys]
    found = st.bootstrap_pairs(pairs, [p for p, _ in CHECKS], resamples, seed)
    return dict(zip(keys, found))


def gate(eff: dict[str, dict[float, st.Effect]]) -> dict[str, vd.Verdict]:
    checks = [vd.Check(f"{key} p{p}", e[p], tol) for key, e in eff.items() for p, tol in CHECKS]
    return {v.name: v for v in vd.decide(checks, MISRATE)}


@pytest.fixture(scope="module")
def trials():
    started = time.perf_counter()
    false_alarms, verdicts = 0, []
    hits = {s: 0 for s in SHIFTS}
    for t in range(TRIALS):
        base, cur = run_pair(t)
        eff = effects(base, cur, sim.MODEL.keys, seed=t)
        out = gate(eff)
        verdicts.append(out)
        false_alarms += any(v.verdict == "regressed" for v in out.values())
        for s in SHIFTS:
            moved = sim.simulate_counts(np.random.default_rng([t, 1]), shift={sim.BUSIEST: s},
                                        keys=(sim.BUSIEST,))
            shifted = dict(eff, **effects(base, moved, [sim.BUSIEST], seed=t))
            hits[s] += gate(shifted)[f"{sim.BUSIEST} p95"].verdict == "regressed"
    return {"false_alarm_rate": false_alarms / TRIALS, "verdicts": verdicts,
            "power": {s: hits[s] / TRIALS for s in SHIFTS},
            "seconds": time.perf_counter() - started}


def test_a_a_false_alarm_rate_of_the_whole_gate_is_within_the_misrate(trials):
    print(f"\nA/A false-alarm rate over {TRIALS} gates of 18 checks: "
          f"{trials['false_alarm_rate']:.3f} ({trials['seconds']:.1f} s for all trials)")
    assert trials["false_alarm_rate"] <= MISRATE
    improved = np.mean([any(v.verdict == "improved" for v in out.values())
                        for out in trials["verdicts"]])
    assert improved <= MISRATE  # the good side is bounded too
    # At 60 s an A/A gate mostly cannot say "equivalent within 15%" either:
    passed = np.mean([v[f"{sim.BUSIEST} p50"].verdict == "pass" for v in trials["verdicts"]])
    print(f"A/A busiest-endpoint p50 'pass': {passed:.3f}; any 'improved': {improved:.3f}")
    assert passed < 0.1


def test_power_on_the_busiest_endpoints_p95(trials):
    power = trials["power"]
    print("\npower (busiest endpoint p95 regressed): " +
          ", ".join(f"x{s}: {p:.3f}" for s, p in power.items()))
    assert power[3.0] >= 0.9  # about what 60 s can detect (0.948 measured)
    # The 95% at x1.25 is not reachable at these sizes (module docstring):
    # these pin the documented figures, so a change that moves them is noticed.
    assert power[1.25] <= 0.05
    assert power[1.10] <= 0.01


def test_inconclusive_a_a_checks_say_how_much_longer_would_decide(trials):
    unsure = [v for out in trials["verdicts"][:50] for v in out.values()
              if v.verdict == "inconclusive"]
    assert unsure and all(v.more_data > 1 and v.advice for v in unsure)


def test_fewer_resamples_in_the_trials_leave_the_verdicts_unchanged(trials):
    same = total = 0
    for t in range(40):
        base, cur = run_pair(t)
        full = gate(effects(base, cur, sim.MODEL.keys, resamples=2000, seed=t))
        for name, v in full.items():
            total += 1
            same += v.verdict == trials["verdicts"][t][name].verdict
    assert same / total >= 0.99
    assert not any(v.verdict == "regressed" for v in full.values())


def test_the_fast_simulation_is_the_histogram_simulation():
    for seed in (1, 2):
        hists = sim.simulate(np.random.default_rng(seed))
        counts = sim.simulate_counts(np.random.default_rng(seed))
        for key in sim.MODEL.keys:
            read = bl.window_counts(hists[key])
            assert len(read) == 60 and len(counts[key]) == 60
            for a, b, c, d in zip(read.index, counts[key].index, read.count, counts[key].count):
                assert np.array_equal(a, b) and np.array_equal(c, d)


def test_the_simulation_has_realistic_sizes_and_is_not_iid():
    base = sim.simulate_counts(np.random.default_rng(3), sim.Model(seconds=600))
    rates = [base[k].total / 600 for k in sim.MODEL.keys]
    assert rates == pytest.approx([e.rate for e in sim.ENDPOINTS], rel=0.1)
    # Per-second mean log latency (busy enough to see it): the drift is autocorrelated
    # (bursts off: rho 0.9 less sampling noise), and bursts hit all endpoints at once.
    def per_second(model, seed=4):
        ep, window, us = sim.draw(np.random.default_rng(seed), model)
        return np.stack([np.bincount(window[ep == e], np.log(us[ep == e]), 600)
                         / np.bincount(window[ep == e], minlength=600) for e in (0, 1)])
    drift = per_second(sim.Model(seconds=600, rate_scale=50, burst_p=0.0))[0]
    assert 0.6 < np.corrcoef(drift[:-1], drift[1:])[0, 1] < 0.95
    bursty = per_second(sim.Model(seconds=600, rate_scale=50))
    jumps = bursty - np.median(bursty, axis=1, keepdims=True) > np.log(1.8)
    assert 5 <= jumps[0].sum() <= 40 and (jumps[0] == jumps[1]).mean() > 0.99
    started = time.perf_counter()
    for seed in range(10):
        sim.simulate_counts(np.random.default_rng(seed))
    assert (time.perf_counter() - started) / 10 < 0.05
