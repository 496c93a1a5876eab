"""The gate measures itself: A/A runs of one build on this machine. Pure.

`harness calibrate` runs the same build N times and hands the runs here. Every
pair of them is gated as if one were the baseline of the other: since nothing
changed, any `regressed` is a false alarm, so the share of pairs with one is
the false-alarm rate the current policy would have had on this machine. Per
check, the run-to-run spread (the coefficient of variation of the runs' own
values) and the smallest change the gate could flag at that noise (the
tolerance plus the half-width of the intervals it computed) say whether the
policy's tolerances fit the machine; `suggest` turns them into tolerances
wide enough that the A/A pairs would have passed.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations

from harness.analysis.checks import GateSettings, RunData
from harness.analysis.compare import compare


@dataclass
class CheckNoise:
    """One check across the A/A pairs."""

    name: str
    kind: str
    subject: str
    unit: str
    tolerance: str
    values: list[float] = field(default_factory=list)
    """The check's value in each run (ms, %, ratio)."""
    changes: list[float] = field(default_factory=list)
    """Each pair's change (a ratio, or a difference in points)."""
    halfwidths: list[float] = field(default_factory=list)
    """Each pair's interval half-width, on the change's scale."""
    false_alarms: int = 0
    relative: bool = True
    limit: float = 0.0
    """The policy's tolerance: a fraction (relative) or points."""

    @property
    def spread(self) -> float | None:
        """Run-to-run coefficient of variation of the value (None with < 2 values)."""
        if len(self.values) < 2 or not statistics.fmean(self.values):
            return None
        return statistics.stdev(self.values) / statistics.fmean(self.values)

    @property
    def detectable(self) -> float | None:
        """The smallest change the gate flags at this noise: tolerance plus the median
        half-width (a ratio - 1 for relative checks, points otherwise)."""
        if not self.halfwidths:
            return None
        hw = statistics.median(self.halfwidths)
        return (1 + self.limit) * (1 + hw) - 1 if self.relative else self.limit + hw

    @property
    def suggested(self) -> float | None:
        """A tolerance (relative fraction, or points) the A/A pairs would have passed:
        the largest A/A change plus the median half-width, rounded up to 5% (1 point)."""
        if not self.changes or not self.halfwidths:
            return None
        hw = statistics.median(self.halfwidths)
        if self.relative:
            worst = max(abs(math.log(c)) for c in self.changes if c > 0) + math.log1p(hw)
            return math.ceil((math.exp(worst) - 1) * 20) / 20
        worst = max(abs(c) for c in self.changes) + hw
        return float(math.ceil(worst))


@dataclass
class Calibration:
    runs: list[str]
    pairs: int
    false_alarm_pairs: int
    checks: dict[str, CheckNoise]

    @property
    def false_alarm_rate(self) -> float:
        return self.false_alarm_pairs / self.pairs if self.pairs else 0.0


def calibrate(runs: Sequence[RunData], settings: GateSettings) -> Calibration:
    """Gate every pair of A/A runs; the false-alarm rate and each check's noise."""
    checks: dict[str, CheckNoise] = {}
    alarms = pairs = 0
    seen_values: set[tuple[str, str]] = set()
    for i, j in combinations(range(len(runs)), 2):
        gate = compare([runs[i]], [runs[j]], settings, labels=("A", "B"))
        pairs += 1
        alarms += any(c.verdict == "regressed" and not c.advisory for c in gate.checks)
        for c in gate.checks:
            noise = checks.setdefault(c.name, CheckNoise(
                c.name, c.kind, c.subject, c.unit, c.tolerance.text or str(c.tolerance.limit),
                relative=c.tolerance.relative, limit=c.tolerance.limit))
            for run_id, value in ((gate.baseline.run_ids[0], c.baseline),
                                  (gate.current.run_ids[0], c.current)):
                if value is not None and (c.name, run_id) not in seen_values:
                    seen_values.add((c.name, run_id))
                    noise.values.append(value)
            if c.change is not None:
                noise.changes.append(c.change)
            if c.interval is not None and c.change is not None:
                lo, hi = c.interval
                half = (hi - lo) / 2
                noise.halfwidths.append(half if not noise.relative else half / c.change)
            noise.false_alarms += c.verdict == "regressed"
    return Calibration(runs=[r.result.run.run_id for r in runs], pairs=pairs,
                       false_alarm_pairs=alarms, checks=checks)
