"""The `harness` command: parsing, wiring and exit codes only.

Every command's errors come through `main()`, which turns a `HarnessError`
into one line on stderr and its exit code (2: usage or configuration, 3: the
run could not be carried out); nothing else reaches the user as a traceback.
SIGTERM is treated like Ctrl-C, so `finally` blocks stop every child process.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from harness.stack import database
from harness.errors import ConfigError, HarnessError, Interrupted, RunFailed, UsageError
from harness.run.progress import Progress
from harness.stack.stack import Stack, StackConfig

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Load-test and observe the dashboard API; gate CI on regressions.")
stack_app = typer.Typer(no_args_is_help=True, help="Run the stack for manual or scripted use.")
db_app = typer.Typer(no_args_is_help=True, help="Datasets and database maintenance.")
app.add_typer(stack_app, name="stack")
app.add_typer(db_app, name="db")

# CI logs are not terminals: give tables room instead of rich's default 80 columns
err = Console(stderr=True, width=None if sys.stderr.isatty() else 140)
stdout = Console(width=None if sys.stdout.isatty() else 140)

DatasetOpt = Annotated[str, typer.Option("--dataset", help="tiny | small | medium | large")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Dataset seed (deterministic data).")]
ProfileOpt = Annotated[str, typer.Option("--profile", help="optimized | naive")]
DbUrlOpt = Annotated[str | None, typer.Option(
    "--database-url", envvar="HARNESS_DATABASE_URL",
    help="External PostgreSQL URL (default: embedded PostgreSQL under .harness/pg).")]
StateOpt = Annotated[Path, typer.Option("--state-dir", help="Where embedded data lives.")]


@stack_app.command("up")
def stack_up(
    dataset: DatasetOpt = "small",
    seed: SeedOpt = 42,
    profile: ProfileOpt = "optimized",
    database_url: DbUrlOpt = None,
    port: Annotated[int, typer.Option(help="Target port (0: a free one).")] = 0,
    target_workers: Annotated[int, typer.Option(help="uvicorn worker processes.")] = 1,
    faults: Annotated[str, typer.Option(help="ElevenLabs stub fault preset.")] = "healthy",
    state_dir: StateOpt = Path(".harness"),
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON line when ready.")] = False,
) -> None:
    """Start database, dataset, ElevenLabs stub and target service; stay up until Ctrl-C."""
    config = StackConfig(dataset=dataset, seed=seed, profile=profile, database_url=database_url,
                         state_dir=state_dir, run_dir=state_dir / "stack", port=port,
                         target_workers=target_workers, faults=faults)
    config.validate()
    progress = Progress(err)  # phase lines only: no live panel while the stack waits
    with Stack(config, on_phase=progress.phase, on_seed_progress=progress.seed) as stack:
        info = stack.info
        assert info is not None
        if json_out:
            print(info.as_json(), flush=True)
        else:
            user = max(stack.manifest["users"], key=lambda u: u["weight"])
            stdout.print(f"[bold green]ready[/bold green]  profile={profile} dataset={dataset}")
            stdout.print(f"  target:   {info.target_url}")
            stdout.print(f"  stub:     {info.stub_url}  (faults: POST {info.stub_url}/__admin/faults)")
            stdout.print(f"  metrics:  {info.metrics_url}")
            stdout.print(f"  manifest: {info.manifest}")
            stdout.print(f"  database: {database.redact(info.database_url)}")
            stdout.print("  try:", style="dim")
            print(f"    curl -s -H 'Authorization: Bearer {user['api_key']}' "
                  f"{info.target_url}/api/v1/dashboard/overview", flush=True)
            stdout.print("  Ctrl-C stops everything.", style="dim")
        try:
            while stack.target is not None and stack.target.alive:
                time.sleep(0.5)
        except Interrupted:
            err.print("stopping…")
            return
        raise stack.target.fail("exited unexpectedly") if stack.target else HarnessError("stopped")


@app.command("run")
def run(
    scenario: Annotated[str, typer.Option(help="dashboard | agents | writer | mixed | "
                                                "upstream_faults")] = "mixed",
    profile: Annotated[str, typer.Option(
        help="optimized | naive, or both as 'optimized,naive': one run each, then a "
             "side-by-side table")] = "optimized",
    users: Annotated[int, typer.Option(help="Concurrent simulated users.")] = 50,
    spawn_rate: Annotated[float, typer.Option(help="Users started per second.")] = 10.0,
    duration: Annotated[str, typer.Option(help="Measured time, e.g. 60s, 2m.")] = "60s",
    warmup: Annotated[str, typer.Option(help="Load before measuring, excluded.")] = "10s",
    dataset: DatasetOpt = "small",
    seed: SeedOpt = 42,
    workers: Annotated[int, typer.Option(help="Local Locust workers (0: one process).")] = 1,
    remote_workers: Annotated[int, typer.Option(
        help="Extra workers expected from other machines (harness worker).")] = 0,
    master_bind_host: Annotated[str, typer.Option(
        help="Where the Locust master listens (0.0.0.0 for remote workers).")] = "127.0.0.1",
    target_workers: Annotated[int, typer.Option(help="uvicorn workers of the target.")] = 1,
    port: Annotated[int, typer.Option(help="Target port (0: a free one).")] = 0,
    target_cpus: Annotated[str | None, typer.Option(
        help="Pin target and stub to these CPUs (e.g. 0 or 0-1).")] = None,
    locust_cpus: Annotated[str | None, typer.Option(
        help="Pin the Locust processes to these CPUs.")] = None,
    pace_scale: Annotated[float, typer.Option(
        help="Multiply every user's pace (0: unpaced, closed loop).")] = 1.0,
    faults: Annotated[str, typer.Option(help="ElevenLabs stub fault preset.")] = "healthy",
    shape: Annotated[str | None, typer.Option(help="steady | ramp | spike | soak")] = None,
    database_url: DbUrlOpt = None,
    out: Annotated[Path, typer.Option(help="Reports directory (runs/<id>/ inside).")] = Path(
        "reports"),
    state_dir: StateOpt = Path(".harness"),
) -> None:
    """Run a measured load test end to end and write the run directory."""
    from dataclasses import replace

    from harness.outputs.tables import run_table, side_by_side
    from harness.run import record
    from harness.run.config import RunConfig, parse_duration
    from harness.run.runner import Run
    from harness.stack.process import parse_cpus

    stack = StackConfig(dataset=dataset, seed=seed, database_url=database_url,
                        state_dir=state_dir, port=port, target_workers=target_workers,
                        faults=faults, target_cpus=parse_cpus(target_cpus))
    configs = []
    for name in [p.strip() for p in profile.split(",")]:
        config = RunConfig(scenario=scenario, shape=shape, users=users, spawn_rate=spawn_rate,
                           duration_s=parse_duration(duration), warmup_s=parse_duration(warmup),
                           workers=workers, remote_workers=remote_workers,
                           master_bind_host=master_bind_host, pace_scale=pace_scale,
                           locust_cpus=parse_cpus(locust_cpus), out=out,
                           stack=replace(stack, profile=name))
        config.validate()  # every profile before the first run starts
        configs.append(config)
    finished = []
    for config in configs:  # one after another: never two stacks on one machine at once
        with Progress(err) as progress:
            outcome = Run(config, progress).execute()
            progress.phase("writing the run record")
            try:
                started = time.perf_counter()
                result = record.collect(outcome.run_dir)
                written = record.write(result, outcome.run_dir)
                progress.phase(f"run record written in {time.perf_counter() - started:.2f}s: "
                               + ", ".join(f"{p.name} {p.stat().st_size / 1e6:.2f} MB"
                                           for p in written))
            except Exception as exc:  # noqa: BLE001 - any failure here is one line, exit 3
                if outcome.error is not None:  # what ended the run matters more
                    err.print(f"no run record: {exc}", highlight=False, soft_wrap=True)
                    raise outcome.error from None
                raise RunFailed(f"the run record could not be written: {exc} "
                                f"(measurements kept in {outcome.run_dir})") from exc
        stdout.print(run_table(result))
        stdout.print(f"run directory: {outcome.run_dir}")
        if outcome.error is not None:
            raise outcome.error
        finished.append(result)
    if len(finished) > 1:
        stdout.print(side_by_side(finished))


@app.command("runs")
def runs(out: Annotated[Path, typer.Option(help="Reports directory.")] = Path("reports")) -> None:
    """List past runs, newest first."""
    from harness.outputs.tables import runs_table
    from harness.run.layout import list_runs

    stdout.print(runs_table(list_runs(out / "runs"), str(out / "runs")))


@app.command("worker")
def worker(
    master: Annotated[str, typer.Option(help="The master's HOST:PORT (printed by harness run).")],
    scenario: Annotated[str, typer.Option(help="The run's scenario.")] = "mixed",
    shape: Annotated[str | None, typer.Option(help="The run's shape, if any.")] = None,
) -> None:
    """Join a running `harness run` from this machine as a Locust worker."""
    import subprocess

    from scenarios import SCENARIOS, locustfiles_arg

    host, _, port = master.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"--master must be HOST:PORT, not {master!r}")
    if scenario not in SCENARIOS:
        raise UsageError(f"unknown scenario {scenario!r}; choose from {', '.join(SCENARIOS)}")
    argv = [sys.executable, "-m", "locust", "-f", locustfiles_arg(scenario, shape), "--worker",
            "--master-host", host, "--master-port", port]
    proc = subprocess.Popen(argv)
    try:
        code = proc.wait()
    except Interrupted:
        proc.terminate()
        proc.wait(30)
        raise
    if code:
        raise RunFailed(f"the Locust worker exited with code {code}")


@db_app.command("seed")
def db_seed(
    dataset: DatasetOpt = "small",
    seed: SeedOpt = 42,
    database_url: DbUrlOpt = None,
    state_dir: StateOpt = Path(".harness"),
) -> None:
    """Build (or reuse) the dataset templates for both profiles and report the time."""
    config = StackConfig(dataset=dataset, seed=seed, database_url=database_url,
                         state_dir=state_dir)
    config.validate()
    embedded = None
    if database_url:
        admin = database_url
    else:
        embedded = database.EmbeddedPostgres(state_dir / "pg")
        admin = embedded.start()
    progress = Progress(err)
    try:
        started = time.perf_counter()
        for optimized in (False, True):
            ds = asyncio.run(database.ensure_dataset(admin, dataset, seed, optimized=optimized,
                                                     progress=progress.seed))
            stdout.print(f"{ds.template}: ready")
        counts = ds.manifest.get("counts", {})
        stdout.print(f"dataset {dataset} (seed {seed}) ready in "
                     f"{time.perf_counter() - started:.1f}s: "
                     + ", ".join(f"{k}={v:,}" for k, v in counts.items()))
    finally:
        if embedded is not None:
            embedded.stop()


@db_app.command("maintain")
def db_maintain(
    database_url: Annotated[str, typer.Option("--database-url", envvar="HARNESS_DATABASE_URL",
                                              help="The service database to maintain.")],
    force: Annotated[bool, typer.Option(help="Roll even if the cutoff is recent.")] = False,
) -> None:
    """Roll the recent-calls partial index forward (run daily, e.g. from cron)."""
    from target_service.db.maintenance import roll_recent_calls_index

    async def roll():
        conn = await database.connect(database_url, error=ConfigError)
        try:
            return await roll_recent_calls_index(conn, force=force)
        finally:
            await conn.close()

    result = asyncio.run(roll())
    verb = "rolled to" if result.rolled else "up to date:"
    stdout.print(f"recent_calls index {verb} {result.index_name} (cutoff {result.cutoff:%Y-%m-%d})")


def _interrupt(signum: int, frame: object) -> None:
    # Our own exception, not KeyboardInterrupt: click would turn that into
    # "Aborted!" and exit 1, and the documented code for an interrupted run is 3.
    raise Interrupted(f"interrupted by {signal.Signals(signum).name}")


def main() -> None:
    """Entry point of the console script."""
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        app()
    except HarnessError as exc:
        err.print(f"[bold red]error:[/bold red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
