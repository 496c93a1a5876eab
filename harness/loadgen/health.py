"""The load generator's own health: is it measuring the service, or itself?

A Locust process whose CPU is pegged sends late and times late, so its
latencies describe the generator. Each process (master, workers, or the local
runner) samples its CPU every second; a process above `CPU_SATURATION_PCT`
for more than `CPU_SATURATION_SHARE` of the measured window, or one that got
Locust's own CPU warning, marks the run saturated. Pure: no Locust, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from harness.model.client import GeneratorHealth, GeneratorProcess

CPU_SATURATION_PCT = 90.0
CPU_SATURATION_SHARE = 0.10
RULE = (f"a process above {CPU_SATURATION_PCT:.0f}% CPU for more than "
        f"{CPU_SATURATION_SHARE:.0%} of the measured window, or a Locust CPU warning")


@dataclass
class ProcessHealth:
    """What the master knows about one Locust process."""

    role: str
    id: str
    pid: int | None = None
    host: str | None = None
    samples: list[tuple[float, float]] = field(default_factory=list)
    """(epoch s, CPU %) once a second: the share since the previous sample."""
    cpu_warnings: int = 0
    final: bool = False
    last_horizon: float = 0.0
    """Everything this process recorded before this instant has been merged."""
    requests: int = 0


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def assess(p: ProcessHealth, lo: float | None, hi: float | None) -> GeneratorProcess:
    """One process over the window [lo, hi] (its whole life when no sample falls inside)."""
    # each sample is the CPU share since the previous one: weigh it by that interval
    # (a saturated process samples late, so fewer, longer samples)
    timed, prev = [], None
    for t, v in sorted(p.samples):
        timed.append((t, v, min(max(t - prev, 0.0), 60.0) if prev is not None else 1.0))
        prev = t
    window = [(v, w) for t, v, w in timed
              if (lo is None or t >= lo) and (hi is None or t <= hi)]
    window = window or [(v, w) for _, v, w in timed]
    values = [v for v, _ in window]
    total = sum(w for _, w in window)
    above = sum(w for v, w in window if v > CPU_SATURATION_PCT)
    share = above / total if total else 0.0
    hot = share > CPU_SATURATION_SHARE or p.cpu_warnings > 0
    return GeneratorProcess(role=p.role, id=p.id, pid=p.pid, host=p.host,
                            cpu_max=max(values) if values else None,
                            cpu_p90=percentile(values, 90.0),
                            cpu_above_90_share=round(share, 4), samples=len(values),
                            requests=p.requests, cpu_warnings=p.cpu_warnings, saturated=hot)


def generator_health(processes: list[ProcessHealth], lo: float | None,
                     hi: float | None) -> GeneratorHealth:
    """Every process's health, the master first; saturated when any one is."""
    ordered = sorted(processes, key=lambda p: (p.role != "master", p.id))
    assessed = [assess(p, lo, hi) for p in ordered]
    return GeneratorHealth(processes=assessed, saturated=any(p.saturated for p in assessed),
                           rule=RULE)
