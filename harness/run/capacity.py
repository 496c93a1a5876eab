"""`harness capacity`, the processes: one measured run per arrival rate, until the SLO breaks.

Each step is a complete `harness run` of its own (a fresh stack, warm-up, measured
window, run record) under `reports/capacity/<id>/runs/`, so every step can be opened,
reported and compared like any run, and one step's queue or caches never leak into the
next. The arrival rate is paced task starts per second: `users` simulated users at the
scenario's pace (times `--pace-scale`), the number of users from the pace the previous
step measured. What to judge and when to stop is `harness.analysis.capacity`; this
module runs the steps, writes `capacity.json` after each (an interrupted search keeps
the steps it finished) and returns the record.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from harness.analysis import capacity as decide
from harness.errors import HarnessError, Interrupted, UsageError
from harness.model.capacity import CAPACITY_JSON, CapacityRecord, CapacityStep, Plan, Slo
from harness.model.files import save_json
from harness.model.result import RunResult, iso_time
from harness.run import record
from harness.run.config import RunConfig
from harness.run.progress import Progress
from harness.run.run_info import git_state
from harness.run.runner import Run


def capacity_dir(out: Path, capacity_id: str) -> Path:
    return out / "capacity" / capacity_id


@dataclass
class CapacityJob:
    """What to search: the scenario and stack of every step (`base`), the SLO and the plan."""

    base: RunConfig
    """Scenario, profile, stack, workers, pace scale; users and durations are per step."""
    slo: Slo
    plan: Plan
    on_step: Callable[[CapacityStep], None] = field(default=lambda _step: None)
    """Called after each step is judged (the terminal's line per step)."""

    def validate(self) -> None:
        """Everything that can be refused before the first step starts (exit 2)."""
        p = self.plan
        if p.start_rate <= 0 or p.max_rate < p.start_rate:
            raise UsageError("--start-rate must be positive and --max-rate at least it")
        if p.factor <= 1:
            raise UsageError("--factor must be above 1 (each step asks more)")
        if p.min_requests < 1:
            raise UsageError("--min-requests must be at least 1")
        if p.max_steps < 1:
            raise UsageError("--max-steps must be at least 1")
        if not 0 < p.min_step_s <= p.max_step_s:
            raise UsageError("--step-duration must be positive and at most --max-step-duration")
        if self.base.pace_scale <= 0:
            raise UsageError("--pace-scale 0 is a closed loop, which has no arrival rate to "
                             "step: capacity needs paced users")
        if self.base.scenario == "healthz":
            raise UsageError("the healthz scenario is unpaced: it has no arrival rate")
        if self.base.shape not in (None, "steady"):
            raise UsageError("a capacity step holds its rate: no --shape")
        # a step's own config must be valid too (duration, users, stack)
        self.step_config(self.plan.start_rate, 1, decide.step_duration(
            self.plan.start_rate, self.plan), Path(".")).validate()

    def step_config(self, rate: float, users: int, duration_s: float, out: Path) -> RunConfig:
        """The run of one step: `users` started within the warm-up, held for `duration_s`."""
        spawn = max(1.0, users / max(1.0, self.plan.warmup_s / 2))
        return replace(self.base, users=users, spawn_rate=spawn, duration_s=duration_s,
                       warmup_s=self.plan.warmup_s, out=out, shape=None)


def new_record(job: CapacityJob) -> CapacityRecord:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    base = job.base
    commit, _ = git_state(base.stack.target_source)
    return CapacityRecord(
        id=f"{stamp}-{base.scenario}-{base.profile}-{secrets.token_hex(2)}", status="running",
        scenario=base.scenario, profile=base.profile, dataset=base.stack.dataset,
        target_workers=base.stack.target_workers, slo=job.slo, plan=job.plan,
        git_commit=commit, started_at=iso_time(time.time()) or "")


def save(rec: CapacityRecord, directory: Path) -> Path:
    path = directory / CAPACITY_JSON
    save_json(rec, path, indent=2)
    return path


def search(job: CapacityJob, progress: Progress,
           run_step: Callable[[RunConfig, Progress], RunResult] | None = None
           ) -> tuple[CapacityRecord, Path]:
    """Run steps until the analysis says stop; the record (written) and its directory.

    A step that could not be carried out ends the search: the record is written with
    status failed or interrupted and the step's error is raised after it."""
    run_step = run_step or _run_step
    rec = new_record(job)
    directory = capacity_dir(job.base.out, rec.id)
    directory.mkdir(parents=True, exist_ok=True)
    save(rec, directory)
    failure: HarnessError | None = None
    while (rate := decide.next_rate(job.plan, rec.steps)) is not None:
        users = decide.users_for(rate, decide.per_user_rate(rec.steps, job.base.pace_scale))
        duration = decide.step_duration(rate, job.plan)
        progress.phase(f"step {len(rec.steps) + 1}: {rate:g} tasks/s ({users} users, "
                       f"{duration:g}s measured)")
        config = job.step_config(rate, users, duration, directory)
        try:
            result = run_step(config, progress)
        except HarnessError as exc:
            failure = exc
            rec.notes.append(f"step at {rate:g} tasks/s: {exc}")
            break
        measured = decide.measure(result, asked_rate=rate, users=users, duration_s=duration,
                                  slo=job.slo, plan=job.plan)
        step = CapacityStep(**measured.model_dump(),
                            verdict=decide.judge(measured, job.slo, job.plan))
        rec.steps.append(step)
        save(rec, directory)
        job.on_step(step)
    rec.conclusion = decide.conclude(rec.steps, job.plan)
    rec.status = ("complete" if failure is None else
                  "interrupted" if isinstance(failure, Interrupted) else "failed")
    rec.ended_at = iso_time(time.time())
    save(rec, directory)
    if failure is not None:
        raise failure
    return rec, directory


def _run_step(config: RunConfig, progress: Progress) -> RunResult:
    """One step: a `harness run` and its record (the step's error, if any, raised after
    the record is written, so a failed step's measurements are kept)."""
    outcome = Run(config, progress).execute()
    try:
        result = record.collect(outcome.run_dir)
        record.write(result, outcome.run_dir)
    except HarnessError:
        if outcome.error is not None:
            raise outcome.error from None
        raise
    if outcome.error is not None:
        raise outcome.error
    return result
