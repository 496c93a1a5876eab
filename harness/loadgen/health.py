"""The load generator's own health: is it measuring the service, or itself?

A Locust process whose CPU is pegged sends late and times late, so its
latencies describe the generator. Each process (master, workers, or the local
runner) samples its CPU every second; a process above `CPU_SATURATION_PCT`
for more than `CPU_SATURATION_SHARE` of the measured window, or one that got
Locust's own CPU warning, marks the run saturated. Pure: no Locust, no I/O.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from harness.model.client import GeneratorHealth, GeneratorProcess

CPU_SATURATION_PCT = 90.0
CPU_SATURATION_SHARE = 0.10
RULE = (f"a process above {CPU_SATURATION_PCT:.0f}% CPU for more than "
        f"{CPU_SATURATION_SHARE:.0%} of the measured window, or a Locust CPU warning")


@dataclass
class CpuStats:
    """Running CPU figures: weighted shares, maximum, and values counted at 0.1% resolution
    for the p90, so nothing grows with the length of the run."""

    values: Counter = field(default_factory=Counter)
    weight: float = 0.0
    above: float = 0.0
    max: float | None = None
    n: int = 0

    def add(self, value: float, weight: float) -> None:
        self.values[round(value, 1)] += 1
        self.weight += weight
        if value > CPU_SATURATION_PCT:
            self.above += weight
        self.max = value if self.max is None else max(self.max, value)
        self.n += 1

    def p90(self) -> float | None:
        """Nearest-rank 90th percentile of the (0.1%-rounded) values."""
        if not self.n:
            return None
        rank = max(1, math.ceil(0.9 * self.n))
        seen = 0
        for value in sorted(self.values):
            seen += self.values[value]
            if seen >= rank:
                return value
        return None


@dataclass
class ProcessHealth:
    """What the master knows about one Locust process."""

    role: str
    id: str
    pid: int | None = None
    host: str | None = None
    cpu_warnings: int = 0
    final: bool = False
    last_horizon: float = 0.0
    """Everything this process recorded before this instant has been merged."""
    requests: int = 0
    inside: CpuStats = field(default_factory=CpuStats)
    """CPU samples within the measured window."""
    overall: CpuStats = field(default_factory=CpuStats)
    _last_t: float | None = None

    def add_cpu(self, t: float, value: float, lo: float | None, hi: float | None) -> None:
        """One sample (the CPU share since the previous one), in the order they were taken.

        Weighed by the time since the previous sample: a saturated process samples late,
        so fewer, longer samples. Inside the window when `lo <= t` and, once the test is
        stopping, `t <= hi` (a sample arrives after it was taken, so `hi` is known then)."""
        weight = 1.0 if self._last_t is None else min(max(t - self._last_t, 0.0), 60.0)
        self._last_t = t
        self.overall.add(value, weight)
        if (lo is None or t >= lo) and (hi is None or t <= hi):
            self.inside.add(value, weight)


def assess(p: ProcessHealth) -> GeneratorProcess:
    """One process over the measured window (its whole life when no sample fell inside)."""
    stats = p.inside if p.inside.n else p.overall
    share = stats.above / stats.weight if stats.weight else 0.0
    hot = share > CPU_SATURATION_SHARE or p.cpu_warnings > 0
    return GeneratorProcess(role=p.role, id=p.id, pid=p.pid, host=p.host, cpu_max=stats.max,
                            cpu_p90=stats.p90(), cpu_above_90_share=round(share, 4),
                            samples=stats.n, requests=p.requests, cpu_warnings=p.cpu_warnings,
                            saturated=hot)


def generator_health(processes: list[ProcessHealth]) -> GeneratorHealth:
    """Every process's health, the master first; saturated when any one is."""
    ordered = sorted(processes, key=lambda p: (p.role != "master", p.id))
    assessed = [assess(p) for p in ordered]
    return GeneratorHealth(processes=assessed, saturated=any(p.saturated for p in assessed),
                           rule=RULE)
