"""`harness store push RUN...` and `harness store list`: the results store, where history lives.

Only wiring: the store is `--store` (also spelled `--results-store`, as on `harness run`
and `harness report`, where `--store` already names the baselines' folder), else
`$HARNESS_STORE`, else the `reports/runs` folder (`harness.store`). A store that cannot
be opened or reached is one line, exit 2 (`harness.cli.main` catches the ConfigError).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from harness import baselines
from harness.cli import OutOpt, app, stdout

store_app = typer.Typer(no_args_is_help=True,
                        help="The results store (a folder or PostgreSQL): push and list runs.")
app.add_typer(store_app, name="store")

ResultsStoreOpt = Annotated[str | None, typer.Option(
    "--store", "--results-store", envvar="HARNESS_STORE", metavar="URL|DIR",
    help="Results store: a directory, or postgresql://user@host:port/db[?schema=NAME] "
         "(default: reports/runs).")]
ScenarioOpt = Annotated[str | None, typer.Option(help="Only runs of this scenario.")]
LastOpt = Annotated[int | None, typer.Option(min=1, help="Only the newest N runs.")]


@store_app.command("push")
def push_cmd(
    runs: Annotated[list[str], typer.Argument(help="Run ids, run directories or `latest`.")],
    store: ResultsStoreOpt = None,
    out: OutOpt = Path("reports"),
) -> None:
    """Keep runs in the results store: record, gate and report (pushed again: replaced)."""
    from harness.store import open_store

    target = open_store(store)
    dirs = [baselines.resolve_run(r, out / "runs") for r in runs]  # all resolve, or none is pushed
    target.check()
    for run_dir in dirs:
        meta = target.push(run_dir)
        stdout.print(f"pushed {meta.run_id} ({meta.scenario}/{meta.profile}, "
                     f"{meta.verdict or 'not gated'}) to {target.location}", highlight=False)


@store_app.command("list")
def list_cmd(scenario: ScenarioOpt = None, last: LastOpt = None,
             store: ResultsStoreOpt = None) -> None:
    """The stored runs, oldest first."""
    from harness.store import open_store

    target = open_store(store)
    found = target.list(scenario=scenario, last=last)
    table = Table(title=f"{len(found)} runs in {target.location}", title_justify="left")
    table.add_column("run", no_wrap=True)
    for col in ("started (UTC)", "scenario", "profile", "users", "commit", "gate"):
        table.add_column(col, no_wrap=True)
    table.add_column("machine", overflow="fold")
    for m in found:
        table.add_row(m.run_id, m.started_at[:19].replace("T", " "), m.scenario, m.profile,
                      str(m.users), m.commit, m.verdict or "-", m.machine or "-")
    stdout.print(table)
