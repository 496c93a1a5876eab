"""`harness bench [--sessions N] [--save NAME] [--compare NAME]`: the pytest-benchmark suites,
session by session, stored and gated, ending with the benchmark page (`report.html`);
`harness bench --report DIR` renders that page again from a bench run directory."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from harness import bench as suites
from harness import bench_store
from harness.analysis import bench as gate_bench
from harness.cli import DbUrlOpt, app, err, stdout
from harness.cli.gate import GateFailed, PolicyOpt, StoreOpt, load_policy
from harness.errors import UsageError
from harness.model.bench import BenchSet
from harness.model.gate import GateResult
from harness.outputs.gate_table import gate_table
from harness.run import gate as gate_files

OutOpt = Annotated[Path, typer.Option(
    "--out", help="Reports directory (bench/<stamp>/ inside).")]
AllowOpt = Annotated[bool, typer.Option(
    "--allow-mismatch", help="Compare results measured on different machines anyway.")]


@app.command("bench")
def bench_cmd(
    sessions: Annotated[int, typer.Option(
        "--sessions", metavar="N",
        help=f"pytest sessions to run, one after another (the gate's unit from "
             f"{gate_bench.MIN_SESSIONS} a side; {gate_bench.DEFAULT_SESSIONS} can decide "
             f"the whole suite at misrate 0.01).")] = gate_bench.DEFAULT_SESSIONS,
    save: Annotated[str | None, typer.Option(
        "--save", metavar="NAME",
        help="Store this run's sessions as STORE/bench/NAME.json.")] = None,
    compare: Annotated[str | None, typer.Option(
        "--compare", metavar="NAME|PATH",
        help="Gate this run against a stored result (or a pytest-benchmark JSON file).")
    ] = None,
    force: Annotated[bool, typer.Option(help="With --save: replace a result of that name.")
                     ] = False,
    keep_data: Annotated[bool, typer.Option(
        "--keep-data", help="With --save: keep every round's time (about 1 MB per "
                            "session), not only each session's summary.")] = False,
    k: Annotated[str | None, typer.Option(
        "-k", metavar="EXPR", help="pytest -k: only the benchmarks matching EXPR.")] = None,
    policy: PolicyOpt = None,
    allow_mismatch: AllowOpt = False,
    store: StoreOpt = Path("baselines"),
    out: OutOpt = Path("reports"),
    database_url: DbUrlOpt = None,
    report: Annotated[Path | None, typer.Option(
        "--report", metavar="DIR",
        help="Run nothing: render DIR/report.html again from a bench run directory "
             "(its sessions.json and gate.json; the baseline from --store).")] = None,
) -> None:
    """Run scenarios/benchmarks through pytest-benchmark N times; compare first, then save.

    Exit 0 pass (or inconclusive), 1 regressed, 2 bad input (nothing written),
    3 a benchmark failed, pytest could not run, or Ctrl-C (nothing stored).
    Results: OUT/bench/<stamp>/, ending with its page, report.html.
    """
    if report is not None:
        given = [flag for flag, on in (("--save", save), ("--compare", compare), ("-k", k),
                                       ("--force", force), ("--keep-data", keep_data)) if on]
        if given:
            raise UsageError(f"--report renders a run that is done; it takes no "
                             f"{', '.join(given)}")
        path = suites.write_page(report, suites.page_inputs(report, store))
        stdout.print(f"bench report: {path} ({path.stat().st_size / 1e6:.2f} MB)",
                     highlight=False, markup=False)
        return
    # Everything that can be refused is refused before the suites run.
    if not 1 <= sessions <= suites.MAX_SESSIONS:
        raise UsageError(f"--sessions must be 1 to {suites.MAX_SESSIONS}, not {sessions}")
    baseline: BenchSet | None = None
    rules = None
    if compare is not None:
        baseline = bench_store.load(bench_store.resolve(compare, store))
        rules = load_policy(policy, store)
        mode = gate_bench.plan(baseline, sessions, baseline_label=f"baseline {compare}")
        if mode == "rounds":
            stdout.print(
                f"note: {len(baseline.sessions)} vs {sessions} session(s), fewer than "
                f"{gate_bench.MIN_SESSIONS} a side: the gate treats rounds as independent "
                f"samples, which ignores session-to-session variation (overconfident)",
                highlight=False)
    if save is not None:
        bench_store.check_save(store, save, force)

    run_dir = suites.new_run_dir(out)
    stdout.print(f"benchmarks: {suites.SUITES}{f' -k {k!r}' if k else ''}, {sessions} "
                 f"session(s) -> {run_dir}", highlight=False, markup=False)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    done = suites.run_sessions(
        run_dir, sessions, k, database_url, color=sys.stdout.isatty(),
        say=lambda text: stdout.print(f"[bold]{text}[/bold]", highlight=False))
    measured = BenchSet.of([s.result for s in done], keep_rounds=True, created_at=started, k=k)
    stored = BenchSet.of([s.result for s in done],
                         keep_rounds=bench_store.keep_rounds(sessions, keep_data),
                         created_at=started, k=k)
    sessions_json = bench_store.write_set(run_dir / suites.SESSIONS_JSON, stored)
    stdout.print(f"{sessions} session(s) of {len(measured.fullnames())} benchmark(s) in "
                 f"{sum(s.seconds for s in done):.1f} s: {sessions_json}", highlight=False)

    result = None
    if baseline is not None and rules is not None:
        names = [*baseline.fullnames(), *measured.fullnames()]
        selected = suites.selected(done, names) if k else None
        result = gate_bench.compare_benchmarks(
            baseline, measured, gate_bench.settings_from(rules),
            labels=(f"baseline {compare}", "current"), run_ids=(compare, run_dir.name),
            selected=selected, allow_mismatch=allow_mismatch)
        result.decided_at = datetime.now(UTC).isoformat()
        gate_files.write(result, run_dir)
        stdout.print(gate_table(result))
        left_out = gate_bench.deselected(baseline, measured, selected)
        if left_out:
            stdout.print(f"not compared (not selected by -k): {len(left_out)} stored "
                         f"benchmark(s)", highlight=False)
        stdout.print(f"gate: {result.verdict} (exit {result.exit_code}); "
                     f"{run_dir / gate_files.GATE_FILE}", highlight=False)
    if save is not None:
        path = bench_store.save(store, save, stored, force=force)
        kept = "with" if stored.raw_rounds else "without"
        stdout.print(f"saved benchmark result {save} ({sessions} session(s), {kept} raw "
                     f"rounds, {path.stat().st_size / 1024:.0f} KB): {path}", highlight=False)
    _page(run_dir, measured, baseline, compare, result)
    if result is not None and result.exit_code:
        raise GateFailed(result)


def _page(run_dir: Path, measured: BenchSet, baseline: BenchSet | None, name: str | None,
          gate: GateResult | None) -> None:
    """The run's page, `report.html`. A page that cannot be rendered is one line on stderr:
    the sessions, the stored result and the gate stand, and so does the exit code."""
    from harness.outputs.report.bench_page import BenchInputs

    try:
        path = suites.write_page(run_dir, BenchInputs(
            current=measured, run_id=run_dir.name, baseline=baseline, baseline_name=name,
            gate=gate))
    except Exception as exc:  # noqa: BLE001 - the results are written; say so, go on
        err.print(f"no bench report: {exc} (render it later: harness bench --report "
                  f"{run_dir})", highlight=False, markup=False, soft_wrap=True)
        return
    stdout.print(f"bench report: {path} ({path.stat().st_size / 1e6:.2f} MB)",
                 highlight=False, markup=False)
