"""Tracing overhead inside one run (`harness.analysis.interleave`), on known truth.

The simulator (`tests/sim.py`: AR(1) drift shared by every endpoint, 3% burst
seconds) makes a long run in which every `on` block of the overview is slower by
a known factor, or by nothing (A/A). Measured with `/tmp/il_rates.py` (200 trials a
row; 10-minute runs, 30 s blocks, 6 s guard: 10 kept blocks an arm, ~2,400 overview
requests an arm; 400 resamples), the p95's 95% interval:

| true change | interval excludes 0 | lower bound > 0 | median half-width |
|---:|---:|---:|---:|
| 0 (A/A) | 10 of 200 (5.0%, nominal 5%) | 5 | ±16% |
| +5% | 12 | 12 | ±16% |
| +10% | 40 | 40 | ±18% |
| +20% | 129 (power 65%) | 129 | ±19% |

(Resampling the arms independently instead, with Welch's df, gave 8, 15, 43 and
131: the simulator's p95 noise is mostly its burst seconds, which pairing cannot
cancel, and pairs have fewer degrees of freedom.)

The simulator's drift is a pessimistic machine (a shared-CI VM); a quiet one
drifts less. The tests below assert those rates with room for the trials' own
binomial noise.
"""

from __future__ import annotations

import numpy as np
import pytest

from harness.analysis import interleave as il
from harness.loadgen.traces import TraceparentSource
from harness.model.overhead import arm_of
from tests import sim

OVERVIEW = sim.BUSIEST
START = 1_800_000_000  # an epoch second that is a multiple of 30: block edges at 0, 30, ...


def run(rng, shift: float, seconds: int = 600, block_s: int = 30, guard_s: int = 6,
        resamples: int = 400):
    model = sim.Model(seconds=seconds)
    ts = list(range(START, START + seconds))
    on = np.array([arm_of(t, block_s) == "on" for t in ts])
    windows = sim.simulate_counts(rng, model, {OVERVIEW: shift}, keys=(OVERVIEW,), shifted=on)
    counts = {t: 30 for t in ts}
    return il.overhead(windows, ts, counts, 0.1, block_s, guard_s, resamples=resamples,
                       seed=int(rng.integers(1 << 30)))


def test_arms_alternate_by_the_epochs_blocks():
    assert [arm_of(t, 10) for t in (0, 9, 10, 19, 20, 35)] == ["off", "off", "on", "on",
                                                              "off", "on"]


def test_only_complete_pairs_of_blocks_are_kept_past_their_guard():
    seconds = list(range(5, 67))  # block 0 starts before the window, block 6 ends after it
    kept = il.kept_blocks(seconds, 10, 3)
    # pairs (off k, on k + 1) for even k: (0, 1) has its off block cut by the window
    assert kept == {"off": [list(range(23, 30)), list(range(43, 50))],
                    "on": [list(range(33, 40)), list(range(53, 60))]}
    # a measured second missing inside a block drops its pair only
    assert il.kept_blocks([t for t in seconds if t != 35], 10, 3) == {
        "off": [list(range(43, 50))], "on": [list(range(53, 60))]}
    for bad in ((1, 0), (10, 10), (10, -1)):
        with pytest.raises(ValueError):
            il.kept_blocks(seconds, *bad)


def test_cpu_counts_samples_wholly_inside_kept_seconds_scaled_to_their_length():
    blocks = [list(range(10, 20))]
    samples = [il.CpuSample(t=12.0, interval=2.0, cpu_percent=50.0),   # 1 s of CPU, inside
               il.CpuSample(t=16.0, interval=2.0, cpu_percent=100.0),  # 2 s, inside
               il.CpuSample(t=21.0, interval=2.0, cpu_percent=100.0)]  # straddles the end
    # 3 s of CPU over 4 s covered, over a 10 s block: 7.5 s
    assert il.cpu_seconds(samples, blocks) == pytest.approx(7.5)
    assert il.cpu_seconds(samples[2:], blocks) is None


def test_arms_count_requests_and_cpu_per_request():
    ts = list(range(START, START + 120))
    windows = sim.simulate_counts(np.random.default_rng(1), sim.Model(seconds=120),
                                  keys=(OVERVIEW,))
    counts = {t: (20 if arm_of(t, 10) == "on" else 10) for t in ts}
    samples = [il.CpuSample(t=float(t), interval=1.0,
                            cpu_percent=40.0 if arm_of(t - 1, 10) == "on" else 10.0)
               for t in ts[1:]]
    o = il.overhead(windows, ts, counts, 0.25, 10, 2, samples, resamples=200)
    assert (o.off.blocks, o.on.blocks) == (6, 6) and o.off.seconds == 48
    assert (o.off.sampling, o.on.sampling) == (0.0, 0.25)
    assert (o.off.requests, o.on.requests) == (480, 960)
    # 0.1 s of CPU a second over 10 requests a second: 10 ms; 0.4 s over 20: 20 ms
    assert o.off.cpu_ms_per_request == pytest.approx(10.0)
    assert o.on.cpu_ms_per_request == pytest.approx(20.0)


def test_a_known_slowdown_of_the_sampled_blocks_is_found_with_its_interval():
    o = run(np.random.default_rng(7), 1.20)
    p95 = o.endpoints[OVERVIEW]["p95"]
    assert p95.low < 0.20 < p95.high and p95.low > 0
    assert p95.on_ms > p95.off_ms
    assert o.endpoints[OVERVIEW]["p50"].change == pytest.approx(0.20, abs=0.05)


def test_false_alarm_rate_and_power_of_the_p95_interval():
    rng = np.random.default_rng(2026)
    trials = 60
    false_alarms = sum(not (q.low <= 0 <= q.high)
                       for q in (run(rng, 1.0).endpoints[OVERVIEW]["p95"]
                                 for _ in range(trials)))
    detected = sum(q.low > 0 for q in (run(rng, 1.20).endpoints[OVERVIEW]["p95"]
                                       for _ in range(trials)))
    # nominal 5%: 3 of 60 expected; 9 or more has probability < 0.2% if the rate is 5%
    assert false_alarms <= 8, false_alarms
    # measured power 65%: 40 of 60 expected; fewer than 28 is 3 sd below
    assert detected >= 28, detected


def test_too_few_blocks_is_said_not_estimated():
    ts = list(range(START, START + 40))
    windows = sim.simulate_counts(np.random.default_rng(3), sim.Model(seconds=40),
                                  keys=(OVERVIEW,))
    o = il.overhead(windows, ts, dict.fromkeys(ts, 1), 0.1, 10, 2)
    assert o.endpoints == {} and "fewer than 3 kept blocks" in o.notes[0]


def test_the_client_samples_only_in_the_on_blocks():
    now = [0.0]
    source = TraceparentSource(1.0, interleave_s=5, clock=lambda: now[0])
    flags = {}
    for t in range(20):
        now[0] = START + t + 0.5
        flags[t] = {source.next()[2] for _ in range(20)}
    assert all(flags[t] == ({True} if arm_of(START + t, 5) == "on" else {False})
               for t in flags)
    with pytest.raises(ValueError):
        TraceparentSource(0.1, interleave_s=1)


def test_pairs_are_resampled_together_so_identical_arms_have_no_spread():
    # the same windows on both arms: a paired resample always holds the same blocks on
    # both sides (ratio exactly 1); arms resampled independently would spread
    ts = list(range(START, START + 240))
    windows = sim.simulate_counts(np.random.default_rng(5), sim.Model(seconds=240),
                                  keys=(OVERVIEW,))[OVERVIEW]
    kept = il.kept_blocks(ts, 20, 4)
    off = [il._slice(windows, [t - START for t in b]) for b in kept["off"]]
    twin, same = il.blk.block_pair(off, off, 16)
    paired = il.stats.bootstrap_pairs([(twin, same)], [95.0], 300, 1, paired=True)[0][95.0]
    apart = il.stats.bootstrap_pairs([(twin, same)], [95.0], 300, 1)[0][95.0]
    assert paired.estimate == 0 and paired.se == 0
    assert apart.se > 0
    with pytest.raises(ValueError, match="as many blocks"):
        il.stats.bootstrap_pairs([il.blk.block_pair(off[:-1], off, 16)], [95.0], 10, 1,
                                 paired=True)
