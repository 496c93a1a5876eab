"""`harness ablate`: each optimization turned off alone, all on and all off, interleaved."""

from __future__ import annotations

import shlex
import sys
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
from harness.cli.gate import AllowOpt, PolicyOpt, StoreOpt, load_policy
from harness.errors import HarnessError


@app.command("ablate")
def ablate(
    scenario: Annotated[str, typer.Option(help="The scenario every configuration runs.")
                        ] = "mixed",
    rounds: Annotated[int, typer.Option(
        help="Runs per configuration; each round runs every configuration, rotated.")] = 3,
    toggles: Annotated[str | None, typer.Option(
        help="Comma-separated toggles to turn off one at a time (default: every toggle "
             "of target_service.settings.Toggles).")] = None,
    all_off: Annotated[bool, typer.Option(
        "--all-off/--no-all-off", help="Also run all off (the naive profile).")] = True,
    users: UsersOpt = 50,
    spawn_rate: SpawnRateOpt = 10.0,
    duration: Annotated[str, typer.Option(help="Measured time per run, e.g. 40s.")] = "40s",
    warmup: WarmupOpt = "10s",
    dataset: DatasetOpt = "small",
    seed: SeedOpt = 42,
    workers: WorkersOpt = 1,
    target_workers: TargetWorkersOpt = 1,
    faults: FaultsOpt = "healthy",
    pace_scale: PaceScaleOpt = 1.0,
    database_url: DbUrlOpt = None,
    out: Annotated[Path, typer.Option(
        help="Reports directory (ablate/<id>/, runs/<id>/).")] = Path("reports"),
    state_dir: StateOpt = Path(".harness"),
    policy: PolicyOpt = None,
    allow_mismatch: AllowOpt = False,
    store: StoreOpt = Path("baselines"),
) -> None:
    """Measure every optimization's effect: each toggle off alone, all on and all off, in
    interleaved rounds on one dataset; writes reports/ablate/<id>/ablate.json,
    ablate.md and report.html. Exit 0 done, 2 bad input, 3 a run failed or was interrupted (what was
    measured is kept and compared)."""
    from harness.cli.ab import run_planned
    from harness.run import ablate as job
    from harness.run.config import RunConfig, parse_duration
    from harness.stack.stack import StackConfig

    names = None if toggles is None else [t.strip() for t in toggles.split(",") if t.strip()]
    configs = job.configurations(names, all_off)
    plan = job.order(len(configs), rounds)
    base = RunConfig(scenario=scenario, users=users, spawn_rate=spawn_rate,
                     duration_s=parse_duration(duration), warmup_s=parse_duration(warmup),
                     workers=workers, pace_scale=pace_scale, out=out,
                     stack=StackConfig(dataset=dataset, seed=seed, database_url=database_url,
                                       state_dir=state_dir, target_workers=target_workers,
                                       faults=faults, profile="optimized"))
    base.validate()
    gate_rules = load_policy(policy, store).gate  # unusable policy: exit 2 before any run
    runs = {c.name: job.configure(c, base, state_dir) for c in configs}
    command = "harness " + shlex.join(sys.argv[1:])
    directory, record = job.new_job(out, base, configs, rounds, command)
    err.print(f"ablation job {directory}: {len(configs)} configurations x {rounds} round(s) "
              f"= {len(plan)} runs of {base.warmup_s + base.duration_s:g} s plus start-up "
              f"each", highlight=False)
    by_name = {c.name: c for c in configs}

    def analyse() -> None:
        written = job.analyse(record, out / "runs", directory, gate_rules.block_s,
                              gate_rules.resamples, gate_rules.seed, allow_mismatch)
        err.print(f"[dim]•[/dim] {', '.join(str(p) for p in written)}", highlight=False)
        _report(record, out, directory, store)

    try:
        for n, ((r, _), planned) in enumerate(zip(plan, record.runs, strict=True), 1):
            config = by_name[planned.config]
            run_planned(runs[config.name], planned,
                        f"run {n} of {len(plan)}: round {r}, {config.name} ({config.spec})",
                        lambda: job.save(record, directory))
    except HarnessError as stopped:  # Ctrl-C or a failed run: compare what was measured
        try:
            err.print("stopping: comparing the runs measured so far", highlight=False)
            analyse()
        except Exception as exc:  # noqa: BLE001 - the first error is the one to report
            err.print(f"no comparison: {exc}", highlight=False, soft_wrap=True)
        raise stopped from None
    err.print("comparing the configurations", highlight=False)
    analyse()
    stdout.print((directory / job.MARKDOWN_FILE).read_text(encoding="utf-8"), markup=False,
                 highlight=False, soft_wrap=True)


def _report(record, out: Path, directory: Path, store: Path) -> None:
    """`report.html`: every configuration against all on (with the gate's verdict each),
    then the compare page of all off against all on. A page that cannot be rendered is one line on stderr and changes no
    exit code: the runs, `ablate.json` and `ablate.md` stand."""
    from harness.outputs.ablation_report import write_ablation_report

    try:
        path = write_ablation_report(record, out / "runs", directory, store)
    except Exception as exc:  # noqa: BLE001 - the measurements are written; say so, go on
        err.print(f"no report: {exc}", highlight=False, soft_wrap=True)
        return
    err.print(f"[dim]•[/dim] report: {path} ({path.stat().st_size / 1e6:.2f} MB)",
              highlight=False)
