"""Tracing overhead inside one run: sampled blocks against unsampled blocks (pure).

Why not two runs. Between two runs of the same build the overview p95 moves by
±20% on this kind of machine (a paired `harness ab` at sampling 0.1 read -1.3%
[-32%, +43%] in three rounds): a 5% limit would take tens of rounds to judge.
Inside one run the clients alternate, by the wall clock, N-second blocks that
sample nothing with blocks that sample at P (`harness.model.overhead.arm_of`,
the same rule on the client and here), so both arms share the service, the
database, the dataset and the machine's minutes; what differs is the sampled
traces and what they cost.

What is compared. Block k covers epoch seconds [kN, (k+1)N). Its first
`guard_s` seconds are left out: the batch span processor exports every few
seconds and the spans' garbage is collected later, so the cost of an `on` block
spills into the `off` block after it. A block is kept only when every one of its
remaining seconds was measured (the window's edges cut blocks short).

Unit of resampling: one pair of neighbouring blocks (an `off` block and the `on`
block after it). Seconds inside a block are autocorrelated (a slow second is
followed by slow seconds), and so are two neighbouring blocks: the machine's
slow minute is slow for both arms. Resampling pairs, the same pairs for both arms
(`harness.analysis.stats.bootstrap_pairs(paired=True)`, the gate's own bootstrap),
keeps that shared drift in both numerator and denominator of each resample's
ratio, so it cancels instead of widening the interval. The quantile ratio
`on / off` is estimated on the whole arms.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from harness.analysis import blocks as blk
from harness.analysis import stats
from harness.model.overhead import ArmStats, QuantileChange, TraceOverhead, arm_of

PERCENTILES = ((50.0, "p50"), (95.0, "p95"), (99.0, "p99"))
MIN_BLOCKS = 3
"""Fewer kept blocks on either arm: no interval (the bootstrap has nothing to vary)."""


@dataclass(frozen=True)
class CpuSample:
    """One `processes.csv` row of the target: CPU % over `(t - interval, t]`."""

    t: float
    interval: float
    cpu_percent: float


def kept_blocks(seconds: Iterable[int], block_s: int, guard_s: int) -> dict[str, list[list[int]]]:
    """Per arm, the kept blocks as their kept seconds, in pairs: the j-th `off` block is
    the one just before the j-th `on` block. A block is kept when every second past its
    guard was measured, a pair when both of its blocks are."""
    if block_s < 2 or not 0 <= guard_s < block_s:
        raise ValueError(f"need block_s >= 2 and 0 <= guard_s < block_s, not {block_s}, "
                         f"{guard_s}")
    have = set(seconds)

    def kept(k: int) -> list[int] | None:
        span = list(range(k * block_s + guard_s, (k + 1) * block_s))
        return span if all(t in have for t in span) else None

    out: dict[str, list[list[int]]] = {"off": [], "on": []}
    for k in sorted({t // block_s for t in have}):
        if arm_of(k * block_s, block_s) != "off":
            continue
        off, on = kept(k), kept(k + 1)
        if off is not None and on is not None:
            out["off"].append(off)
            out["on"].append(on)
    return out


def cpu_seconds(samples: Sequence[CpuSample], spans: Sequence[Sequence[int]]) -> float | None:
    """The target's CPU time over the samples whose interval lies inside one kept block,
    scaled to the blocks' whole length (None: no such sample)."""
    inside = covered = 0.0
    for s in samples:
        start = s.t - s.interval
        if s.interval <= 0:
            continue
        for span in spans:
            if span[0] <= start and s.t <= span[-1] + 1:
                inside += s.cpu_percent / 100.0 * s.interval
                covered += s.interval
                break
    length = float(sum(len(span) for span in spans))
    return inside * length / covered if covered else None


def _arm(sampling: float, kept: list[list[int]], counts: Mapping[int, int],
         samples: Sequence[CpuSample]) -> ArmStats:
    seconds = sum(len(b) for b in kept)
    requests = sum(counts.get(t, 0) for b in kept for t in b)
    cpu = cpu_seconds(samples, kept)
    per_request = (1000.0 * cpu / requests) if cpu is not None and requests else None
    return ArmStats(sampling=sampling, blocks=len(kept), seconds=seconds, requests=requests,
                    target_cpu_s=None if cpu is None else round(cpu, 3),
                    cpu_ms_per_request=None if per_request is None else round(per_request, 4))


def _change(effect: stats.Effect) -> QuantileChange:
    """The log-ratio effect as a relative change; the 95% interval is the gate's own
    (Student's t on the bootstrap's standard error)."""
    low, high = effect.interval(0.025)
    bounded = math.isfinite(low) and math.isfinite(high)
    return QuantileChange(
        off_ms=round(effect.baseline / 1000.0, 3), on_ms=round(effect.current / 1000.0, 3),
        change=round(math.expm1(effect.estimate), 5),
        low=round(math.expm1(low), 5) if bounded else None,
        high=round(math.expm1(high), 5) if bounded else None)


def _slice(run: blk.WindowCounts, rows: Sequence[int]) -> blk.WindowCounts:
    return blk.WindowCounts(run.layout, tuple(run.index[i] for i in rows),
                            tuple(run.count[i] for i in rows))


def overhead(windows: Mapping[str, blk.WindowCounts], seconds: Sequence[int],
             counts: Mapping[int, int], sampling: float, block_s: int, guard_s: int,
             samples: Sequence[CpuSample] = (), resamples: int = stats.DEFAULT_RESAMPLES,
             seed: int = 0) -> TraceOverhead:
    """The overhead record of one interleaved run.

    `windows`: per endpoint, its measured seconds' histograms in the order of `seconds`
    (`blocks.window_counts`); `counts`: requests per second (all endpoints);
    `samples`: the target's CPU samples."""
    kept = kept_blocks(seconds, block_s, guard_s)
    row = {t: i for i, t in enumerate(seconds)}
    result = TraceOverhead(block_s=block_s, guard_s=guard_s,
                           off=_arm(0.0, kept["off"], counts, samples),
                           on=_arm(sampling, kept["on"], counts, samples))
    notes = result.notes
    if min(len(kept["off"]), len(kept["on"])) < MIN_BLOCKS:
        notes.append(f"fewer than {MIN_BLOCKS} kept blocks on an arm (off {len(kept['off'])}, "
                     f"on {len(kept['on'])}): run longer, or shorten --trace-interleave")
        return result
    keys, pairs = [], []
    for key in sorted(windows):
        if len(windows[key]) != len(seconds):
            raise ValueError(f"{key}: {len(windows[key])} windows for {len(seconds)} seconds")
        sides = [[_slice(windows[key], [row[t] for t in b]) for b in kept[arm]]
                 for arm in ("off", "on")]
        if not all(sum(w.total for w in side) for side in sides):
            notes.append(f"{key}: no request on one arm")
            continue
        keys.append(key)
        pairs.append(blk.block_pair(sides[0], sides[1], block_s - guard_s))
    effects = stats.bootstrap_pairs(pairs, [p for p, _ in PERCENTILES], resamples, seed,
                                    paired=True)
    for key, by_p in zip(keys, effects, strict=True):
        result.endpoints[key] = {name: _change(by_p[p]) for p, name in PERCENTILES}
    return result
