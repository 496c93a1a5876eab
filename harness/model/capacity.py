"""`capacity.json`: what `harness capacity` asked, every step it ran, and where the SLO broke.

Self-describing and versioned like the run record: the SLO as typed and as parsed, the
plan (first rate, growth factor, limits, how long a step runs), one `CapacityStep` per
arrival rate tried (what was asked, what the generator delivered, what the service
answered, the verdict and why) and the conclusion. Written after every step, so an
interrupted search still says how far it got; each step's own run directory (a complete
`harness run` record) is named by `run_id` under `runs/` beside it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

CAPACITY_SCHEMA_VERSION = 1
CAPACITY_JSON = "capacity.json"

LatencyMetric = Literal["p50", "p90", "p95", "p99", "max"]
Outcome = Literal["held", "latency", "errors", "cannot_tell"]
"""A step's verdict: the SLO held; it broke on latency; it broke on errors; or the step
cannot be judged (a saturated generator, a rate the generator did not deliver, too few
requests), which says nothing about the service's limit."""
Status = Literal["running", "complete", "failed", "interrupted"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Slo(_Model):
    """The objective a step must meet: a latency quantile under a bound, errors under a share."""

    text: str
    """`--slo` as typed, e.g. `p95<100ms`."""
    metric: LatencyMetric
    threshold_ms: float
    errors_text: str
    """`--errors` as typed, e.g. `<1%`."""
    max_error_rate: float
    """As a share (0.01 for 1%)."""

    @property
    def quantile(self) -> float:
        """The metric as a quantile (max: 1.0)."""
        return {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99, "max": 1.0}[self.metric]


class Plan(_Model):
    """How the arrival rate is stepped and how long each step runs."""

    start_rate: float
    """Task starts per second of the first step."""
    factor: float
    """Each next step asks this many times the previous rate."""
    max_rate: float
    max_steps: int
    min_requests: int
    """A step runs long enough for at least this many requests at its rate (one per task
    at the least), so its quantile is estimated within a known tolerance (see
    `harness.analysis.capacity.min_requests`)."""
    min_step_s: float
    max_step_s: float
    warmup_s: float
    max_shortfall: float
    """A step whose generator delivered less than (1 - this) of the asked rate did not
    test that rate: cannot tell."""
    latency: Literal["corrected", "raw"] = "corrected"
    """Which latency the SLO is judged on: corrected for coordinated omission (from each
    task's intended start, the honest figure under an arrival rate) or raw."""


class StepMeasure(_Model):
    """What one step measured (from its run record), before it is judged."""

    asked_rate: float
    """Task starts per second the step asked for."""
    users: int
    duration_s: float
    run_id: str
    intended_rps: float | None
    """Task starts per second the schedule called for (the generator's pacing record)."""
    achieved_rps: float | None
    """Task starts per second the generator achieved."""
    shortfall_ratio: float | None
    requests: int
    throughput_rps: float
    """Requests per second completed in the measured window."""
    failures: int
    error_rate: float
    latency_ms: float | None
    """The SLO's metric over every request of the measured window."""
    latency_ci_ms: tuple[float, float] | None = None
    """Distribution-free 95% bounds of that quantile (None for max, or too few requests)."""
    saturated: bool
    """The load generator was saturated (`generator.saturated` of the run record)."""
    status: str = "complete"
    """The run's own status (complete, failed, interrupted)."""


class StepVerdict(_Model):
    outcome: Outcome
    reason: str


class CapacityStep(StepMeasure):
    """One arrival rate tried, and its verdict."""

    verdict: StepVerdict


class Conclusion(_Model):
    """Where the search ended, in one place."""

    capacity_rate: float | None
    """The highest arrival rate (task starts per second achieved) at which the SLO held,
    below the first step that did not hold. None: not even the first step held."""
    capacity_rps: float | None
    """The requests per second served at that step."""
    broke_by: Outcome | None
    """What ended the search: latency, errors, cannot_tell; None when every step up to
    `max_rate` or `max_steps` held (the capacity is at least `capacity_rate`)."""
    broke_at_rate: float | None
    summary: str
    """One sentence: the capacity, or why it could not be told."""


class CapacityRecord(_Model):
    """The whole `capacity.json`."""

    schema_version: Literal[1] = CAPACITY_SCHEMA_VERSION
    kind: Literal["capacity"] = "capacity"
    id: str
    status: Status
    scenario: str
    profile: str
    dataset: str
    target_workers: int
    slo: Slo
    plan: Plan
    steps: list[CapacityStep] = []
    conclusion: Conclusion | None = None
    """None until the search has ended."""
    git_commit: str | None = None
    started_at: str
    ended_at: str | None = None
    notes: list[str] = []
