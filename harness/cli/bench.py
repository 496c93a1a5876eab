"""`harness bench [--save NAME] [--compare NAME]`: the pytest-benchmark suites, stored and gated."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from harness import bench as suites
from harness.analysis import bench as gate_bench
from harness.cli import DbUrlOpt, app, stdout
from harness.cli.gate import GateFailed, PolicyOpt, StoreOpt, load_policy
from harness.outputs.gate_table import gate_table
from harness.run import gate as gate_files


OutOpt = Annotated[Path, typer.Option(
    "--out", help="Reports directory (bench/<stamp>/ inside).")]
AllowOpt = Annotated[bool, typer.Option(
    "--allow-mismatch", help="Compare results measured on different machines anyway.")]


@app.command("bench")
def bench_cmd(
    save: Annotated[str | None, typer.Option(
        "--save", metavar="NAME", help="Store this run's result as STORE/bench/NAME.json.")
    ] = None,
    compare: Annotated[str | None, typer.Option(
        "--compare", metavar="NAME|PATH",
        help="Gate this run against a stored result (or a pytest-benchmark JSON file).")
    ] = None,
    force: Annotated[bool, typer.Option(help="With --save: replace a result of that name.")
                     ] = False,
    k: Annotated[str | None, typer.Option(
        "-k", metavar="EXPR", help="pytest -k: only the benchmarks matching EXPR.")] = None,
    policy: PolicyOpt = None,
    allow_mismatch: AllowOpt = False,
    store: StoreOpt = Path("baselines"),
    out: OutOpt = Path("reports"),
    database_url: DbUrlOpt = None,
) -> None:
    """Run scenarios/benchmarks through pytest-benchmark; compare first, then save.

    Exit 0 pass (or inconclusive), 1 regressed, 2 bad input (nothing written),
    3 a benchmark failed or pytest could not run. Results: OUT/bench/<stamp>/.
    """
    # Everything that can be refused is refused before the suites run.
    baseline = rules = None
    if compare is not None:
        baseline = suites.load(suites.resolve(compare, store))
        rules = load_policy(policy, store)
    if save is not None:
        suites.check_save(store, save, force)

    run_dir = suites.new_run_dir(out)
    stdout.print(f"benchmarks: {suites.SUITES}{f' -k {k!r}' if k else ''} -> {run_dir}",
                 highlight=False)
    suite = suites.run_suite(run_dir, k, database_url, color=sys.stdout.isatty())
    stdout.print(f"{len(suite.result.benchmarks)} benchmark(s) in {suite.seconds:.1f} s: "
                 f"{suite.json_path}", highlight=False)

    result = None
    if baseline is not None and rules is not None:
        names = [b.fullname for b in [*baseline.benchmarks, *suite.result.benchmarks]]
        selected = suite.selected(names) if k else None
        result = gate_bench.compare_benchmarks(
            baseline, suite.result, gate_bench.settings_from(rules),
            labels=(f"baseline {compare}", "current"), run_ids=(compare, run_dir.name),
            selected=selected, allow_mismatch=allow_mismatch)
        result.decided_at = datetime.now(UTC).isoformat()
        gate_files.write(result, run_dir)
        stdout.print(gate_table(result))
        left_out = gate_bench.deselected(baseline, suite.result, selected)
        if left_out:
            stdout.print(f"not compared (not selected by -k): {len(left_out)} stored "
                         f"benchmark(s)", highlight=False)
        stdout.print(f"gate: {result.verdict} (exit {result.exit_code}); "
                     f"{run_dir / gate_files.GATE_FILE}", highlight=False)
    if save is not None:
        path = suites.save(store, save, suite.json_path, force=force)
        stdout.print(f"saved benchmark result {save}: {path}", highlight=False)
    if result is not None and result.exit_code:
        raise GateFailed(result)
