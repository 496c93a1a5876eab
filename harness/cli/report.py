"""`harness report RUN [--baseline NAME|DIR]` and `harness report --compare RUN_A RUN_B`.

Only wiring: a run reference is resolved as every command resolves it (an id in
`--out`/runs, a directory, `latest`); the single-run page is made by
`harness.outputs.report.write_report`, the compare page (two runs, two run sets
`JOB:A`/`JOB:B`, or one `harness ab` job alone) by `comparison.write_compare`. Bad input
(no such run, a record that does not load, an unknown schema version, no such
baseline, the same run twice, `--compare` with `--baseline`) is a ConfigError or
UsageError: one line, exit 2, nothing written (`harness.cli.main` catches it once).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harness import baselines
from harness.cli import OutOpt, app, stdout
from harness.errors import UsageError
from harness.outputs.report import write_report


@app.command("report")
def report_cmd(
    runs: Annotated[list[str] | None, typer.Argument(
        help="Run id, run directory or `latest`; with --compare: RUN_A RUN_B (a run, or "
             "one side of an ab job, JOB:A / JOB:B) or one ab job (its A against its B).",
        metavar="RUN [RUN_B]", show_default=False)] = None,
    compare: Annotated[bool, typer.Option(
        "--compare", help="B against A side by side, the verdicts first (paired by round "
                          "for an ab job); default -o: the job's report.html, else "
                          "OUT/compare/A-vs-B.html.")] = False,
    baseline: Annotated[str | None, typer.Option(
        "--baseline", help="Baseline name (in --store) or directory to show beside the run "
                           "(default: the one in the run's gate.json, if any).")] = None,
    store: Annotated[Path, typer.Option("--store", help="Where baselines are kept.")] = Path(
        "baselines"),
    output: Annotated[Path | None, typer.Option(
        "-o", "--output", help="Where to write the page (default: RUN/report.html).")] = None,
    out: OutOpt = Path("reports"),
) -> None:
    """Write a run's self-contained HTML report, or two runs' comparison (offline;
    charts and data inlined)."""
    if not runs:  # optional for the parser, so a page of no run (--history) can come
        raise UsageError("no run given: harness report RUN, or harness report --compare "
                         "RUN_A RUN_B")
    if compare:
        if baseline is not None:
            raise UsageError("--compare and --baseline do not go together: A is the "
                             "baseline of a comparison")
        from harness.outputs.report.comparison import write_compare

        path = write_compare(runs, out=out, output=output, store=store)
    else:
        if len(runs) != 1:
            raise UsageError(f"one run per page ({len(runs)} given); to compare two: "
                             "harness report --compare RUN_A RUN_B")
        run_dir = baselines.resolve_run(runs[0], out / "runs")
        path = write_report(run_dir, baseline=baseline, out=output, store=store)
    stdout.print(f"report: {path} ({path.stat().st_size / 1024:,.0f} KB)", highlight=False)
