"""memory_growth: peak RSS in the first vs the last minute of each process."""

from __future__ import annotations

from harness.analysis.memory import memory_growth
from harness.model.result import MemoryGrowth


def every_2s(name: str, seconds: int, rss, start: float = 1000.0):
    """Samples `(t, name, rss_mb, cpu %)` every 2 s, as the process sampler takes them."""
    return [(start + t, name, float(rss(t)), 12.5) for t in range(0, seconds + 1, 2)]


def test_a_flat_process_does_not_grow():
    out = memory_growth(every_2s("target", 600, lambda t: 180.0 + (t % 6) / 10))
    assert out == {"target": MemoryGrowth(first_minute_peak_mb=180.4, last_minute_peak_mb=180.4,
                                          growth=0.0, minutes=10.0)}


def test_growth_of_a_quarter_between_the_first_and_the_last_minute():
    def rss(t: int) -> float:  # 100 MB for a minute, then a climb to 125 MB for the last one
        return 100.0 if t <= 60 else 125.0 if t >= 540 else 100.0 + 25.0 * (t - 60) / 480

    out = memory_growth(every_2s("locust-master", 600, rss))
    m = out["locust-master"]
    assert (m.first_minute_peak_mb, m.last_minute_peak_mb, m.growth, m.minutes) == (
        100.0, 125.0, 0.25, 10.0)


def test_a_process_seen_for_under_a_minute_compares_its_peak_with_itself():
    out = memory_growth(every_2s("harness", 40, lambda t: 50.0 + t / 4))  # 50 -> 60 MB in 40 s
    m = out["harness"]
    assert (m.first_minute_peak_mb, m.last_minute_peak_mb, m.growth, m.minutes) == (
        60.0, 60.0, 0.0, 0.67)


def test_processes_are_kept_apart_and_samples_may_come_in_any_order():
    samples = (every_2s("target", 120, lambda t: 200.0 + t)  # 200 .. 320 MB
               + every_2s("stub", 120, lambda t: 40.0))
    out = memory_growth(reversed(samples))
    assert list(out) == ["stub", "target"]
    assert out["stub"].growth == 0.0
    t = out["target"]
    assert (t.first_minute_peak_mb, t.last_minute_peak_mb, t.growth, t.minutes) == (
        260.0, 320.0, round(320 / 260 - 1, 4), 2.0)


def test_a_zero_first_peak_has_no_growth_ratio_and_no_samples_no_processes():
    out = memory_growth([(0.0, "x", 0.0, 0.0), (100.0, "x", 0.0, 0.0), (200.0, "x", 5.0, 0.0)])
    assert out["x"].growth is None and out["x"].last_minute_peak_mb == 5.0
    assert memory_growth([]) == {}
