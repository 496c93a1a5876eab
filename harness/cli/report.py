"""`harness report RUN [--baseline NAME|DIR]`, `harness report --compare RUN_A RUN_B` and
`harness report --history [--scenario NAME] [--last N] [--results-store URL|DIR]` and
`harness report --scaling RUN... [-o FILE.md]`.

Only wiring: a run reference is resolved as every command resolves it (an id in
`--out`/runs, a directory, `latest`); the single-run page is made by
`harness.outputs.report.write_report`, the compare page (two runs, two run sets
`JOB:A`/`JOB:B`, or one `harness ab` job alone) by `comparison.write_compare`, the
trend page across a results store's runs by `history.write_history`, the scaling
table and chart of runs on several datasets by `scaling_markdown` and `scaling_svg`
(the chart beside the table, same name, `.svg`). Bad input
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
             "one side of an ab job, JOB:A / JOB:B) or one ab job (its A against its B); "
             "none with --history.",
        metavar="RUN [RUN_B]", show_default=False)] = None,
    compare: Annotated[bool, typer.Option(
        "--compare", help="B against A side by side, the verdicts first (paired by round "
                          "for an ab job); default -o: the job's report.html, else "
                          "OUT/compare/A-vs-B.html.")] = False,
    history: Annotated[bool, typer.Option(
        "--history", help="A trend page across the runs in the results store: p95 per "
                          "endpoint, throughput, hit ratios, retry rates, change points; "
                          "default -o: OUT/history.html.")] = False,
    scaling: Annotated[bool, typer.Option(
        "--scaling", help="How each endpoint's p95 grows with the dataset: RUN... are runs "
                          "of one scenario on several datasets (both profiles, any rounds); "
                          "writes a Markdown table and an SVG chart beside it; default -o: "
                          "OUT/scaling/scaling.md.")] = False,
    scenario: Annotated[str | None, typer.Option(
        help="--history: this scenario's runs (default: the newest stored run's).")] = None,
    last: Annotated[int | None, typer.Option(
        min=2, help="--history: only the newest N runs.")] = None,
    results_store: Annotated[str | None, typer.Option(
        "--results-store", envvar="HARNESS_STORE", metavar="URL|DIR",
        help="--history: the results store, a directory or postgresql://... "
             "(default: OUT/runs).")] = None,
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
    if history and scaling:
        raise UsageError("--history and --scaling are two different pages: one at a time")
    if history:
        if runs or compare or baseline is not None:
            raise UsageError("--history takes no RUN, --compare or --baseline: it shows "
                             "the results store's runs")
        from harness.outputs.report.history import write_history
        from harness.store import open_store

        path = write_history(open_store(results_store or out / "runs"), scenario=scenario,
                             last=last, out=output or out / "history.html")
        stdout.print(f"history: {path} ({path.stat().st_size / 1024:,.0f} KB)",
                     highlight=False)
        return
    if scaling:
        if compare or baseline is not None:
            raise UsageError("--scaling takes runs only, not --compare or --baseline")
        md, svg = _write_scaling(runs or [], out, output)
        stdout.print(f"scaling: {md} and {svg.name}", highlight=False)
        return
    if not runs:
        raise UsageError("no run given: harness report RUN, harness report --compare "
                         "RUN_A RUN_B, or harness report --history")
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


def _write_scaling(runs: list[str], out: Path, output: Path | None) -> tuple[Path, Path]:
    from harness.model.result import load
    from harness.outputs import scaling_markdown, scaling_svg
    from harness.run.layout import RESULT

    table = scaling_markdown.build([load(baselines.resolve_run(r, out / "runs") / RESULT)
                                    for r in runs])
    text, chart = scaling_markdown.render(table), scaling_svg.render(table)  # both, or neither
    md = output or out / "scaling" / "scaling.md"
    md.parent.mkdir(parents=True, exist_ok=True)
    svg = md.with_suffix(".svg")
    md.write_text(text, encoding="utf-8")
    svg.write_text(chart, encoding="utf-8")
    return md, svg
