"""`harness report RUN [--baseline NAME|DIR] [--store DIR] [-o FILE]`: the run's HTML page.

Only wiring: the run reference is resolved as every command resolves it (an id in
`--out`/runs, a directory, `latest`), the page is made by
`harness.outputs.report.write_report`. Bad input (no such run, a record that does not
load, an unknown schema version, no such baseline) is a ConfigError: one line, exit 2,
nothing written (`harness.cli.main` catches it once).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harness import baselines
from harness.cli import OutOpt, app, stdout
from harness.outputs.report import write_report


@app.command("report")
def report_cmd(
    run: Annotated[str, typer.Argument(help="Run id, run directory or `latest`.")],
    baseline: Annotated[str | None, typer.Option(
        "--baseline", help="Baseline name (in --store) or directory to show beside the run "
                           "(default: the one in the run's gate.json, if any).")] = None,
    store: Annotated[Path, typer.Option("--store", help="Where baselines are kept.")] = Path(
        "baselines"),
    output: Annotated[Path | None, typer.Option(
        "-o", "--output", help="Where to write the page (default: RUN/report.html).")] = None,
    out: OutOpt = Path("reports"),
) -> None:
    """Write a run's self-contained HTML report (offline; charts and data inlined)."""
    run_dir = baselines.resolve_run(run, out / "runs")
    path = write_report(run_dir, baseline=baseline, out=output, store=store)
    stdout.print(f"report: {path} ({path.stat().st_size / 1024:,.0f} KB)", highlight=False)
