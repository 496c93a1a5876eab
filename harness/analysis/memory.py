"""Memory growth of a run's processes: does anything grow without bound? Pure.

The process sampler records every process's RSS every two seconds. A process
whose peak in the last minute is well above its peak in the first minute is
leaking (or filling a cache that should be bounded); the README's soak figure
is this ratio over a 10-minute run.
"""

from __future__ import annotations

from collections.abc import Iterable

from harness.model.result import MemoryGrowth

MINUTE_S = 60.0


def memory_growth(samples: Iterable[tuple[float, str, float, float]]) -> dict[str, MemoryGrowth]:
    """Per process (samples of `(t, name, rss_mb, cpu_percent)`): first vs last minute peak."""
    by_name: dict[str, list[tuple[float, float]]] = {}
    for t, name, rss, _ in samples:
        by_name.setdefault(name, []).append((t, rss))
    out: dict[str, MemoryGrowth] = {}
    for name, points in sorted(by_name.items()):
        points.sort()
        start, end = points[0][0], points[-1][0]
        first_peak = max(r for t, r in points if t - start <= MINUTE_S)
        last_peak = max(r for t, r in points if end - t <= MINUTE_S)
        out[name] = MemoryGrowth(
            first_minute_peak_mb=round(first_peak, 1), last_minute_peak_mb=round(last_peak, 1),
            growth=round(last_peak / first_peak - 1, 4) if first_peak else None,
            minutes=round((end - start) / MINUTE_S, 2))
    return out
