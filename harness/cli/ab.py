"""`harness ab`: A against B in interleaved rounds, in one job, gated like a baseline."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from harness.cli import (
    DatasetOpt,
    DbUrlOpt,
    FaultsOpt,
    PaceScaleOpt,
    SeedOpt,
    SpawnRateOpt,
    StateOpt,
    TargetWorkersOpt,
    UsersOpt,
    WarmupOpt,
    WorkersOpt,
    app,
    err,
    stdout,
)
from harness.cli.gate import AllowOpt, GateFailed, PolicyOpt, StoreOpt, load_policy
from harness.errors import UsageError

SpecHelp = "profile:NAME | toggles:NAME=VALUE[,...] | ref:GIT_REF | trace:SAMPLING|off"


@app.command("ab")
def ab(
    a: Annotated[str, typer.Option("--a", help=f"Side A (the base): {SpecHelp}")],
    b: Annotated[str, typer.Option("--b", help=f"Side B (the change): {SpecHelp}")],
    rounds: Annotated[int, typer.Option(help="Runs per side, interleaved A B, B A, ...")] = 3,
    scenario: Annotated[str, typer.Option(help="The scenario both sides run.")] = "mixed",
    profile: Annotated[str, typer.Option(
        help="The profile `toggles:` and `ref:` sides start from.")] = "optimized",
    users: UsersOpt = 50,
    spawn_rate: SpawnRateOpt = 10.0,
    duration: Annotated[str, typer.Option(help="Measured time per run, e.g. 60s.")] = "60s",
    warmup: WarmupOpt = "10s",
    dataset: DatasetOpt = "small",
    seed: SeedOpt = 42,
    workers: WorkersOpt = 1,
    target_workers: TargetWorkersOpt = 1,
    faults: FaultsOpt = "healthy",
    pace_scale: PaceScaleOpt = 1.0,
    database_url: DbUrlOpt = None,
    out: Annotated[Path, typer.Option(help="Reports directory (ab/<id>/, runs/<id>/).")
                   ] = Path("reports"),
    state_dir: StateOpt = Path(".harness"),
    policy: PolicyOpt = None,
    allow_mismatch: AllowOpt = False,
    store: StoreOpt = Path("baselines"),
) -> None:
    """Measure A and B in alternating rounds on this machine; gate B against A, paired by
    round: exit 0 pass, 1 regressed, 2 bad input, 3 a run failed or cannot judge."""
    from dataclasses import replace

    from harness.outputs.gate_table import gate_table
    from harness.run import ab as job
    from harness.run.config import RunConfig, parse_duration
    from harness.stack.stack import StackConfig

    specs = job.parse_spec(a), job.parse_spec(b)
    if replace(specs[0], text="") == replace(specs[1], text=""):  # the same, however spelled
        raise UsageError("--a and --b are the same; an A/A job is `harness calibrate`")
    plan = job.order(rounds)
    base = RunConfig(scenario=scenario, users=users, spawn_rate=spawn_rate,
                     duration_s=parse_duration(duration), warmup_s=parse_duration(warmup),
                     workers=workers, pace_scale=pace_scale, out=out,
                     stack=StackConfig(dataset=dataset, seed=seed, database_url=database_url,
                                       state_dir=state_dir, target_workers=target_workers,
                                       faults=faults, profile=profile))
    base.validate()
    rules = load_policy(policy, store)  # a policy that cannot be used: exit 2 before any run
    sides = {}
    commits = []
    for label, spec in zip("AB", specs):
        config, commit = job.configure(spec, base, state_dir)
        config.validate()
        sides[label] = config
        commits.append(commit)
    directory, record = job.new_job(out, *specs, rounds, (commits[0], commits[1]))
    err.print(f"A/B job {directory}: {len(plan)} runs, A = {a}, B = {b}", highlight=False)
    for n, ((r, side), planned) in enumerate(zip(plan, record.runs), 1):
        run_planned(sides[side], planned,
                    f"run {n} of {len(plan)}: round {r}, side {side} "
                    f"({specs[0 if side == 'A' else 1].text})",
                    lambda: job.save(record, directory))
    outcome = job.judge(record, out / "runs", directory, rules, allow_mismatch,
                        job.expected_differences(specs))
    stdout.print(gate_table(outcome.gate))
    stdout.print(f"gate: {outcome.gate.verdict} (exit {outcome.gate.exit_code}); "
                 f"{directory / 'gate.json'}")
    _report(directory, out, store)  # before the exit code: a failed gate's page matters most
    if outcome.gate.exit_code:
        raise GateFailed(outcome.gate)


def run_planned(config, planned, label: str, save: Callable[[], None]) -> None:
    """One planned run of a job (`harness ab`, `harness ablate`): run it, mark it `failed`
    with its run id and save the job's record before the run record is built (so an
    interrupted job still names it), then `complete` once it was; a run that failed raises
    its error after its table is shown."""
    from harness.cli.run import _record
    from harness.outputs.tables import run_table
    from harness.run.progress import Progress
    from harness.run.runner import Run

    with Progress(err) as progress:
        progress.phase(label)
        outcome = Run(config, progress).execute()
        planned.run_id = outcome.run_dir.name
        planned.status = "failed"
        save()
        progress.phase("writing the run record")
        result = _record(outcome)
    stdout.print(run_table(result))
    if outcome.error is not None:
        raise outcome.error
    planned.status = "complete"
    save()


def _report(directory: Path, out: Path, store: Path) -> None:
    """The job's compare page, `reports/ab/<id>/report.html` (A against B, the paired
    verdicts first). A page that cannot be rendered is one line on stderr and changes no
    exit code: the runs, `ab.json` and `gate.json` stand."""
    from harness.outputs.report.comparison import write_compare

    try:
        path = write_compare([str(directory)], out=out, output=directory / "report.html",
                             store=store)
    except Exception as exc:  # noqa: BLE001 - the measurements are written; say so, go on
        err.print(f"no report: {exc} (render it later: harness report --compare {directory})",
                  highlight=False, soft_wrap=True)
        return
    err.print(f"[dim]•[/dim] report: {path} ({path.stat().st_size / 1e6:.2f} MB)",
              highlight=False)
