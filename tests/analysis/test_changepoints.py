"""The change-point wiring on series whose truth is known (seeded, so never flaky).

`harness.analysis.changepoints.detect` adapts Apache Otava's E-divisive detector
(vendored): a step is found at the run it starts, a flat noisy series gives (almost)
none, gaps keep the indices of the input, and the figures its docstring quotes are the
ones `measure()` gives.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.analysis import changepoints
from harness.analysis.changepoints import ChangePoint, detect, measure


def step_series(seed: int, n: int = 40, at: int = 20, sigma: float = 3.0) -> list[float]:
    rng = np.random.default_rng(seed)
    series = 100 + rng.normal(0, 1, n)
    series[at:] += sigma
    return series.tolist()


@pytest.mark.parametrize("at", [8, 20, 31])
def test_a_step_of_four_sigma_is_found_at_the_run_it_starts(at):
    series = step_series(seed=at, at=at, sigma=4)
    points = detect(series)
    assert [p.index for p in points] == [at]
    (p,) = points  # the two sides' means are those of the runs either side of the step
    assert p.before == pytest.approx(np.mean(series[:at]))
    assert p.after == pytest.approx(np.mean(series[at:]))
    assert p.pvalue < changepoints.MAX_PVALUE
    assert p.change == pytest.approx(p.after / p.before - 1)


def test_two_steps_are_both_found():
    rng = np.random.default_rng(7)
    series = np.r_[rng.normal(50, 1, 25), rng.normal(60, 1, 25), rng.normal(45, 1, 25)]
    assert [p.index for p in detect(series.tolist())] == [25, 50]


def test_a_series_longer_than_the_window_is_searched_whole():
    """Otava slides a 50-run window; a step far past the first window is still found."""
    series = step_series(seed=3, n=130, at=110, sigma=8)
    assert [p.index for p in detect(series)] == [110]


def test_a_flat_noisy_series_gives_few_false_alarms_over_200_seeds():
    rng = np.random.default_rng(11)
    alarms = [len(detect((100 + rng.normal(0, 1, 40)).tolist())) for _ in range(200)]
    assert sum(1 for a in alarms if a) <= 6  # measured: 2 of 200 (p < 0.001 per test)
    assert max(alarms) <= 2


def test_measure_reports_the_docstrings_figures():
    """The numbers in the module docstring and the README come from this call."""
    m = measure()
    assert (m["flat_false_alarms"], m["flat_series_with_any"]) == (3, 2)
    steps = m["steps"]
    assert [steps[s]["exact"] for s in (1, 2, 3, 4)] == [0.165, 0.615, 0.81, 0.95]
    assert [steps[s]["within_1"] for s in (1, 2, 3, 4)] == [0.285, 0.855, 0.96, 0.995]
    assert [steps[s]["elsewhere"] for s in (1, 2, 3, 4)] == [55, 31, 12, 11]
    assert "3 false alarms" in changepoints.__doc__ and "95% / 99.5%" in changepoints.__doc__


def test_gaps_are_skipped_and_indices_are_the_inputs():
    """A run without the endpoint (None) or with no finite value is left out of the
    test; the change point still names the run in the input series."""
    values: list[float | None] = list(step_series(seed=5, n=30, at=15, sigma=5))
    values[3] = None
    values[10] = math.nan
    values.insert(15, None)  # the step now starts at input index 16
    values[20] = math.inf
    assert [p.index for p in detect(values)] == [16]


@pytest.mark.parametrize("values", [[], [1.0], [1.0, 5.0, 1.0], [7.0] * 30, [None] * 10])
def test_too_short_or_constant_series_have_none(values):
    assert detect(values) == []


def test_min_magnitude_drops_significant_but_small_changes():
    series = step_series(seed=2, n=40, at=20, sigma=4)  # a 4% change
    assert [p.index for p in detect(series)] == [20]
    assert detect(series, min_magnitude=0.10) == []


def test_change_of_a_zero_level():
    assert ChangePoint(index=1, before=0.0, after=2.0, pvalue=0.0).change == math.inf
    assert ChangePoint(index=1, before=0.0, after=0.0, pvalue=0.0).change == 0.0
    assert ChangePoint(index=1, before=10.0, after=5.0, pvalue=0.0).change == -0.5
