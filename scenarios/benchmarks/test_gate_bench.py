"""The gate's statistics on two runs of 1,000,000 requests each: under 1 s.

Each run is 300 one-second windows of ~3,333 requests of one endpoint
(lognormal, median 20 ms vs 21 ms, log-sd 0.6, per-second median drifting as
AR(1)),
held as the interval log holds them: one encoded HdrHistogram per window.
Timed: decoding the 600 windows, reading their buckets, the shared-grid
block matrices (5 s blocks), the block bootstrap of p50/p95/p99 with 2000
resamples a side, and the Holm-adjusted verdicts.

    .venv/bin/pytest scenarios/benchmarks/test_gate_bench.py
"""

from __future__ import annotations

import numpy as np
import pytest

from harness import hdr
from harness.analysis import blocks as bl
from harness.analysis import stats as st
from harness.analysis import verdicts as vd

WINDOWS = 300
REQUESTS = 1_000_000


def _counts_index(h: hdr.HdrHistogram, us: np.ndarray) -> np.ndarray:
    """HdrHistogram's counts index of each value (its `_counts_index_for`), vectorized."""
    bit_length = np.frexp((us | h.sub_bucket_mask).astype(np.float64))[1].astype(np.int64)
    bucket = bit_length - h.unit_magnitude - (h.sub_bucket_half_count_magnitude + 1)
    sub = us >> (bucket + h.unit_magnitude)
    return ((bucket + 1) << h.sub_bucket_half_count_magnitude) + sub - h.sub_bucket_half_count


def _run(rng: np.random.Generator, median_ms: float) -> list[str]:
    """One run's windows, encoded; counts are written straight into each histogram
    (recording a million values one by one would take longer than the gate)."""
    drift = np.zeros(WINDOWS)  # AR(1), rho 0.9, stationary sd 0.05
    drift[0] = rng.normal(0, 0.05)
    for w in range(1, WINDOWS):
        drift[w] = 0.9 * drift[w - 1] + rng.normal(0, 0.05 * np.sqrt(1 - 0.81))
    out = []
    for w in range(WINDOWS):
        n = REQUESTS // WINDOWS + (w < REQUESTS % WINDOWS)
        us = np.rint(np.exp(np.log(median_ms * 1000) + drift[w] + rng.normal(0, 0.6, n)))
        us = np.clip(us, hdr.LOWEST_US, hdr.HIGHEST_US).astype(np.int64)
        h = hdr.new_histogram()
        idx = _counts_index(h, us)
        np.ctypeslib.as_array(h.counts)[:] += np.bincount(idx, minlength=h.counts_len).astype(
            np.uint64)
        h.total_count = n
        h.min_value, h.max_value = int(us.min()), int(us.max())
        out.append(hdr.encode(h))
    return out


@pytest.fixture(scope="module")
def two_runs() -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(2024)
    return _run(rng, 20.0), _run(rng, 21.0)


def compare(base: list[str], cur: list[str]) -> list[vd.Verdict]:
    pb, pc = bl.block_pair(bl.window_counts(base), bl.window_counts(cur))
    eff = st.bootstrap_quantiles(pb, pc, (50, 95, 99))
    tol = {50: vd.Tolerance(0.15), 95: vd.Tolerance(0.15), 99: vd.Tolerance(0.25)}
    return vd.decide([vd.Check(f"p{p}", e, tol[p]) for p, e in eff.items()])


def test_compare_two_runs_of_a_million_requests(benchmark, two_runs):
    base, cur = two_runs
    assert bl.window_counts(base).total == REQUESTS
    verdicts = benchmark.pedantic(compare, args=(base, cur), rounds=7, warmup_rounds=1)
    assert [v.verdict for v in verdicts] == ["pass", "pass", "pass"]
    assert verdicts[0].estimate == pytest.approx(1.05, abs=0.05)  # drift moves run medians
    assert benchmark.stats.stats.median < 1.0
