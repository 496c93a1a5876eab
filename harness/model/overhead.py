"""The tracing overhead measured inside one run: `result.json`'s `trace_overhead`.

`harness run --trace-sampling P --trace-interleave N` alternates, by the wall
clock, N-second blocks in which the clients sample nothing (`off`: every
request carries an unsampled `traceparent`, so the service records no span)
with blocks in which they sample at P (`on`). Both arms share one service, one
database, one dataset state and the same minutes of the machine's life, which is
what separate runs cannot give: between two runs the overview p95 moves by ±20%
on its own, within one run the arms see the same drift. The figures here are
`harness.analysis.interleave`'s; this module is only the record.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ArmStats(_Model):
    """One arm's share of the run: the complete blocks it kept, past their guard."""

    sampling: float
    blocks: int
    seconds: int
    requests: int
    """Client requests that started in the arm's kept seconds."""
    target_cpu_s: float | None = None
    """The target's CPU time over the kept seconds (`processes.csv`, samples whose
    whole interval lies inside them); None without samples."""
    cpu_ms_per_request: float | None = None
    """The target's CPU per second over the client's requests per second."""


class QuantileChange(_Model):
    """`on / off - 1` of one latency quantile, and its 95% interval (None: too few
    requests in some block for the bootstrap to say)."""

    off_ms: float
    on_ms: float
    change: float
    low: float | None
    high: float | None


class TraceOverhead(_Model):
    """Tracing's cost, sampled arm against unsampled arm, per endpoint."""

    block_s: int
    guard_s: int
    """The first seconds of every block left out: the batch exporter's work and the
    garbage of the arm before spill into them."""
    off: ArmStats
    on: ArmStats
    endpoints: dict[str, dict[str, QuantileChange]] = {}
    """Per endpoint, per quantile ("p50", "p95", "p99")."""
    method: str = ("paired block bootstrap of the quantile ratio: the unit is a pair of "
                   "neighbouring kept blocks (off, then on), both arms resampled with the "
                   "same pairs")
    notes: list[str] = []


def arm_of(t: float, block_s: int) -> str:
    """`"on"` in the odd N-second blocks of the epoch, `"off"` in the even ones: the one
    rule the clients sample by and the analysis splits by, with nothing shared at run
    time (every Locust process reads its own clock)."""
    return "on" if int(t // block_s) % 2 else "off"
