"""The `harness` command: parsing, wiring and exit codes only.

Every command's errors come through `main()`, which turns a `HarnessError`
into one line on stderr and its exit code (2: usage or configuration, 3: the
run could not be carried out; 1: the gate failed, returned by the commands
that gate); anything else is a bug, said in one line with exit 3 (`HARNESS_DEBUG=1` shows
its traceback); nothing reaches the user as a traceback. SIGTERM is treated
like Ctrl-C, so `finally` blocks stop every child process.

The commands live beside this module, one group per file: `stack` (stack up,
db, worker), `run` (run, runs), `gate` (compare, baseline), `store` (the results
store: push, list).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from harness.errors import HarnessError, Interrupted

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Load-test and observe the dashboard API; gate CI on regressions.")
stack_app = typer.Typer(no_args_is_help=True, help="Run the stack for manual or scripted use.")
db_app = typer.Typer(no_args_is_help=True, help="Datasets and database maintenance.")
baseline_app = typer.Typer(no_args_is_help=True, help="Save, list, show and remove baselines.")
app.add_typer(stack_app, name="stack")
app.add_typer(db_app, name="db")
app.add_typer(baseline_app, name="baseline")

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
OutOpt = Annotated[Path, typer.Option("--out", help="Reports directory (runs/<id>/ inside).")]
# The load options `harness run` and `harness ab` share (defaults stay at the call site).
UsersOpt = Annotated[int, typer.Option("--users", help="Concurrent simulated users.")]
SpawnRateOpt = Annotated[float, typer.Option("--spawn-rate", help="Users started per second.")]
WarmupOpt = Annotated[str, typer.Option("--warmup", help="Load before measuring, excluded.")]
WorkersOpt = Annotated[int, typer.Option("--workers",
                                         help="Local Locust workers (0: one process).")]
TargetWorkersOpt = Annotated[int, typer.Option("--target-workers",
                                               help="uvicorn workers of the target.")]
FaultsOpt = Annotated[str, typer.Option("--faults", help="ElevenLabs stub fault preset.")]
PaceScaleOpt = Annotated[float, typer.Option(
    "--pace-scale", help="Multiply every user's pace (0: unpaced, closed loop).")]


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
        label = getattr(exc, "label", "error")
        err.print(f"[bold red]{label}:[/bold red] {escape(str(exc))}", highlight=False,
                  soft_wrap=True)
        sys.exit(exc.exit_code)
    except Exception as exc:  # a bug, not bad input: one line, exit 3, traceback on request
        if os.environ.get("HARNESS_DEBUG"):
            raise
        err.print(f"[bold red]internal error:[/bold red] {type(exc).__name__}: "
                  f"{escape(str(exc))} "
                  "(a bug in the harness; HARNESS_DEBUG=1 shows the traceback)",
                  highlight=False, soft_wrap=True)
        sys.exit(3)


# Importing a command module registers its commands; `harness --help` lists them in
# this order (the everyday ones first), so the block is not sorted.
# isort: off
from harness.cli import gate, run, stack  # noqa: F401 - compare, baseline, run, stack
from harness.cli import ab  # noqa: F401 - harness ab
from harness.cli import bench  # noqa: F401 - harness bench
from harness.cli import alerts  # noqa: F401 - harness alerts export|grafana
from harness.cli import report  # noqa: F401 - harness report
from harness.cli import store  # noqa: F401 - harness store push|list
from harness.cli import capacity  # noqa: F401 - harness capacity
from harness.cli import ablate  # noqa: F401 - harness ablate
# isort: on
