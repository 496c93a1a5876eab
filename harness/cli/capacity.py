"""`harness capacity`: step the arrival rate up until an SLO breaks; the highest rate that held.

Parsing and wiring only: the decisions are `harness.analysis.capacity`, the steps
`harness.run.capacity`. A bad `--slo`/`--errors` or plan is exit 2 before anything
starts; a step that could not be carried out is exit 3 with the steps done so far kept
in `capacity.json`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from harness.cli import (
    DatasetOpt,
    DbUrlOpt,
    PaceScaleOpt,
    SeedOpt,
    StateOpt,
    TargetWorkersOpt,
    WarmupOpt,
    WorkersOpt,
    app,
    err,
    stdout,
)
from harness.model.capacity import CapacityRecord, CapacityStep
from harness.outputs.numbers import ms

STYLE = {"held": "green", "latency": "bold red", "errors": "bold red",
         "cannot_tell": "bold yellow"}
LABEL = {"held": "held", "latency": "broke: latency", "errors": "broke: errors",
         "cannot_tell": "cannot tell"}


@app.command("capacity")
def capacity(
    slo: Annotated[str, typer.Option(help="The latency objective, METRIC<THRESHOLD: "
                                          "p50|p90|p95|p99|max, in ms or s, e.g. 'p95<100ms' "
                                          "(judged on coordinated-omission-corrected latency "
                                          "of all requests unless --raw-latency).")],
    errors: Annotated[str, typer.Option(help="Failed requests allowed, e.g. '<1%'.")] = "<1%",
    scenario: Annotated[str, typer.Option(help="A paced scenario: dashboard | agents | "
                                               "writer | mixed | upstream_faults")] = "mixed",
    profile: Annotated[str, typer.Option(help="optimized | naive")] = "optimized",
    start_rate: Annotated[float, typer.Option(
        help="Arrival rate of the first step, in task starts per second.")] = 10.0,
    factor: Annotated[float, typer.Option(help="Each next step asks this many times the "
                                               "previous rate.")] = 1.5,
    max_rate: Annotated[float, typer.Option(help="Never ask more than this.")] = 2000.0,
    max_steps: Annotated[int, typer.Option(help="At most this many steps.")] = 12,
    step_duration: Annotated[str, typer.Option(
        help="The least measured time of a step (longer when its rate needs more time "
             "for enough requests to estimate the quantile).")] = "10s",
    max_step_duration: Annotated[str, typer.Option(help="The most.")] = "60s",
    warmup: WarmupOpt = "5s",
    max_shortfall: Annotated[float, typer.Option(
        help="A step whose generator started less than (1 - this) of the asked rate, "
             "with the latency fine, did not test that rate (cannot tell).")] = 0.1,
    min_requests: Annotated[int | None, typer.Option(
        help="Requests a step needs to be judged (default: enough for the SLO's quantile to "
             "lie within (1 - q)/2.5 of it with 95% confidence: 457 for a p95).")] = None,
    raw_latency: Annotated[bool, typer.Option(
        "--raw-latency", help="Judge raw latency instead of corrected.")] = False,
    dataset: DatasetOpt = "small",
    seed: SeedOpt = 42,
    workers: WorkersOpt = 1,
    target_workers: TargetWorkersOpt = 1,
    target_cpus: Annotated[str | None, typer.Option(
        help="Pin target and stub to these CPUs (e.g. 0).")] = None,
    locust_cpus: Annotated[str | None, typer.Option(
        help="Pin the Locust processes to these CPUs.")] = None,
    pace_scale: PaceScaleOpt = 1.0,
    database_url: DbUrlOpt = None,
    out: Annotated[Path, typer.Option(help="Reports directory (capacity/<id>/ inside).")
                   ] = Path("reports"),
    state_dir: StateOpt = Path(".harness"),
) -> None:
    """Find the highest arrival rate at which the SLO holds: one measured run per rate,
    each rate `--factor` times the last, until a step breaks the SLO (latency or errors)
    or cannot be judged (a saturated generator: "cannot tell", never the service's limit).
    Writes reports/capacity/<id>/capacity.json and each step's run directory."""
    from harness.analysis.capacity import min_requests as needed
    from harness.analysis.capacity import parse_slo
    from harness.model.capacity import Plan
    from harness.run.capacity import CapacityJob, search
    from harness.run.config import RunConfig, parse_duration
    from harness.run.progress import Progress
    from harness.stack.process import parse_cpus
    from harness.stack.stack import StackConfig

    objective = parse_slo(slo, errors)  # exit 2 before anything starts
    plan = Plan(start_rate=start_rate, factor=factor, max_rate=max_rate, max_steps=max_steps,
                min_requests=(needed(objective.quantile) if min_requests is None
                              else min_requests),
                min_step_s=parse_duration(step_duration),
                max_step_s=parse_duration(max_step_duration), warmup_s=parse_duration(warmup),
                max_shortfall=max_shortfall, latency="raw" if raw_latency else "corrected")
    stack = StackConfig(dataset=dataset, seed=seed, database_url=database_url,
                        state_dir=state_dir, target_workers=target_workers, profile=profile,
                        target_cpus=parse_cpus(target_cpus))
    base = RunConfig(scenario=scenario, workers=workers, pace_scale=pace_scale,
                     locust_cpus=parse_cpus(locust_cpus), out=out, stack=stack)
    job = CapacityJob(base=base, slo=objective, plan=plan,
                      on_step=lambda step: err.print(step_line(step), highlight=False))
    job.validate()
    with Progress(err) as progress:
        rec, directory = search(job, progress)
    stdout.print(capacity_table(rec))
    stdout.print(f"capacity record: {directory / 'capacity.json'}")


def step_line(step: CapacityStep) -> str:
    """One line per judged step, as the search goes."""
    return (f"[dim]•[/dim] {step.asked_rate:g} tasks/s: "
            f"[{STYLE[step.verdict.outcome]}]{LABEL[step.verdict.outcome]}[/] "
            f"({step.verdict.reason})")


def _num(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def capacity_table(rec: CapacityRecord) -> Table:
    """The step table: asked and delivered rate, requests, errors, the SLO's quantile with
    its 95% bounds, the verdict; the conclusion as its caption."""
    slo = rec.slo
    table = Table(title=f"capacity of {rec.scenario} / {rec.profile} on {rec.dataset}: "
                        f"{slo.text}, errors {slo.errors_text} ({rec.plan.latency} latency)",
                  caption=rec.conclusion.summary if rec.conclusion else None)
    for col in ("step", "asked tasks/s", "started tasks/s", "users", "req/s", "requests",
                "errors %", f"{slo.metric} ms", "95% bounds ms", "verdict"):
        table.add_column(col, justify="left" if col in ("verdict",) else "right")
    for n, s in enumerate(rec.steps, 1):
        bounds = (f"{ms(s.latency_ci_ms[0])}–{ms(s.latency_ci_ms[1])}"
                  if s.latency_ci_ms else "–")
        table.add_row(str(n), f"{s.asked_rate:g}", _num(s.achieved_rps), str(s.users),
                      _num(s.throughput_rps), f"{s.requests:,}", f"{100 * s.error_rate:.2f}",
                      ms(s.latency_ms), bounds,
                      Text(LABEL[s.verdict.outcome], style=STYLE[s.verdict.outcome]))
    return table
