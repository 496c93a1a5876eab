"""`harness stack up`, `harness db seed|maintain`, `harness worker`: the stack by hand."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from harness.cli import (
    DatasetOpt,
    DbUrlOpt,
    ProfileOpt,
    SeedOpt,
    StateOpt,
    app,
    db_app,
    err,
    stack_app,
    stdout,
)
from harness.errors import ConfigError, HarnessError, Interrupted, RunFailed, UsageError
from harness.run.progress import Progress
from harness.stack import database
from harness.stack.stack import Stack, StackConfig


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


@app.command("worker")
def worker(
    master: Annotated[str, typer.Option(help="The master's HOST:PORT (printed by harness run).")],
    scenario: Annotated[str, typer.Option(help="The run's scenario.")] = "mixed",
    shape: Annotated[str | None, typer.Option(help="The run's shape, if any.")] = None,
) -> None:
    """Join a running `harness run` from this machine as a Locust worker.

    Only the locustfiles come from this checkout: the master hands the worker the
    target's URL, the run's `--harness-*` options (seed, pacing, trace sampling) and the
    dataset manifest, so this machine needs the same checkout installed and nothing of
    the run's directory."""
    import subprocess

    from harness.stack.address import check_connect_host
    from scenarios import SCENARIOS, SHAPE_NAMES, locustfiles_arg

    host, _, port = master.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) <= 65535:
        raise UsageError(f"--master must be HOST:PORT, not {master!r}")
    check_connect_host(host, "--master")  # e.g. 0.0.0.0: where it listens, not an address
    if scenario not in SCENARIOS:
        raise UsageError(f"unknown scenario {scenario!r}; choose from {', '.join(SCENARIOS)}")
    if shape is not None and shape not in SHAPE_NAMES:
        raise UsageError(f"unknown shape {shape!r}; choose from {', '.join(SHAPE_NAMES)}")
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
