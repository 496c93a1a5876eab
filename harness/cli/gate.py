"""`harness compare` and `harness baseline save|list|show|rm`: the regression gate."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from harness import baselines
from harness.cli import OutOpt, app, baseline_app, stdout
from harness.errors import HarnessError
from harness.model import policy as pol
from harness.model.gate import GateResult
from harness.outputs.gate_table import gate_table
from harness.outputs.numbers import ms
from harness.run import gate

StoreOpt = Annotated[Path, typer.Option("--store", help="Where baselines are kept.")]
PolicyOpt = Annotated[Path | None, typer.Option(
    "--policy", help="Tolerances and the gate's misrate (default: STORE/policy.toml).")]
AllowOpt = Annotated[bool, typer.Option(
    "--allow-mismatch", help="Compare runs of different load, dataset or machine anyway.")]


class GateFailed(HarnessError):
    """The gate's own verdict as an exit code (1 regressed, 3 cannot judge)."""

    label = "gate"

    def __init__(self, result: GateResult) -> None:
        super().__init__(result.summary)
        self.exit_code = result.exit_code


def load_policy(path: Path | None, store: Path) -> pol.Policy:
    """The policy file given, else the store's, else the defaults."""
    if path is not None:
        return pol.load_policy(path)
    default = store / "policy.toml"
    return pol.load_policy(default) if default.exists() else pol.Policy()


def gate_runs(run_dirs: list[Path], baseline_ref: str, store: Path, policy: Path | None,
              allow_mismatch: bool) -> GateResult:
    """Compare, write the gate's files into the last run, show the table; the result."""
    current = gate.read_runs(run_dirs)
    result = gate.judge(current, baselines.load(baselines.resolve(baseline_ref, store)),
                        load_policy(policy, store), allow_mismatch)
    gate.write(result, run_dirs[-1], current[-1][0])
    stdout.print(gate_table(result))
    stdout.print(f"gate: {result.verdict} (exit {result.exit_code}); "
                 f"{run_dirs[-1] / gate.GATE_FILE}")
    return result


@app.command("compare")
def compare_cmd(
    runs: Annotated[list[str], typer.Argument(help="Run ids, run directories or `latest`.")],
    baseline: Annotated[str, typer.Option(help="Baseline name (in --store) or directory.")],
    policy: PolicyOpt = None,
    allow_mismatch: AllowOpt = False,
    store: StoreOpt = Path("baselines"),
    out: OutOpt = Path("reports"),
) -> None:
    """Gate runs against a baseline: exit 0 pass, 1 regressed, 2 bad input, 3 cannot judge."""
    run_dirs = [baselines.resolve_run(ref, out / "runs") for ref in runs]
    result = gate_runs(run_dirs, baseline, store, policy, allow_mismatch)
    if result.exit_code:
        raise GateFailed(result)


@baseline_app.command("save")
def baseline_save(
    runs: Annotated[list[str], typer.Argument(help="Run ids, run directories or `latest`.")],
    name: Annotated[str, typer.Option(help="The baseline's name.")],
    force: Annotated[bool, typer.Option(help="Replace a baseline of that name.")] = False,
    store: StoreOpt = Path("baselines"),
    out: OutOpt = Path("reports"),
) -> None:
    """Save one or more runs (rounds) as a baseline, fit to commit."""
    run_dirs = [baselines.resolve_run(ref, out / "runs") for ref in runs]
    saved = baselines.save(store, name, run_dirs, force=force)
    stdout.print(f"saved baseline {saved.name}: {len(saved.runs)} run(s) in {store / name}")


@baseline_app.command("list")
def baseline_list(store: StoreOpt = Path("baselines")) -> None:
    """The baselines in the store."""
    table = Table(title=f"baselines in {store}")
    for col in ("name", "runs", "scenario", "profile", "dataset", "created (UTC)"):
        table.add_column(col)
    for name, b in baselines.list_baselines(store):
        if b is None:
            table.add_row(name, "–", "unreadable baseline.json", "–", "–", "–")
            continue
        table.add_row(name, str(len(b.runs)), b.scenario, b.profile,
                      f"{b.dataset.preset} (seed {b.dataset.seed})", b.created_at[:19])
    stdout.print(table)


@baseline_app.command("show")
def baseline_show(name: str, store: StoreOpt = Path("baselines")) -> None:
    """One baseline and its runs."""
    shown = baselines.show(baselines.resolve(name, store))
    b = shown.baseline
    stdout.print(f"baseline {b.name}: {b.scenario}/{b.shape}, {b.users} users, "
                 f"profile {b.profile}, dataset {b.dataset.preset}, saved {b.created_at[:19]}")
    table = Table()
    for col in ("run", "schema", "status", "commit", "requests", "rps", "p95 ms"):
        table.add_column(col)
    for r in shown.runs:
        table.add_row(r.run_id, str(r.schema_version), r.status, (r.git_commit or "–")[:12],
                      f"{r.requests:,}", f"{r.throughput_rps:,.1f}",
                      ms(r.p95_ms))
    stdout.print(table)


@baseline_app.command("rm")
def baseline_rm(name: str, store: StoreOpt = Path("baselines")) -> None:
    """Remove a baseline from the store."""
    stdout.print(f"removed {baselines.remove(store, baselines.check_name(name))}")


@app.command("calibrate")
def calibrate_cmd(
    runs: Annotated[list[str] | None, typer.Argument(
        help="A/A runs of one build (ids, directories); or give --runs to make them.")] = None,
    n_runs: Annotated[int, typer.Option("--runs", help="Run the build this many times first.")
                      ] = 0,
    scenario: Annotated[str, typer.Option(help="With --runs: the scenario.")] = "mixed",
    users: Annotated[int, typer.Option(help="With --runs: concurrent users.")] = 50,
    duration: Annotated[str, typer.Option(help="With --runs: measured time.")] = "60s",
    warmup: Annotated[str, typer.Option(help="With --runs: warm-up.")] = "10s",
    dataset: Annotated[str, typer.Option(help="With --runs: tiny | small | medium | large")
                       ] = "small",
    state_dir: Annotated[Path, typer.Option(help="With --runs: embedded data.")] = Path(
        ".harness"),
    policy: PolicyOpt = None,
    write_policy: Annotated[Path | None, typer.Option(
        help="Write the suggested tolerances as a policy file.")] = None,
    store: StoreOpt = Path("baselines"),
    out: OutOpt = Path("reports"),
) -> None:
    """Measure the gate on this machine: false-alarm rate over A/A pairs, noise per check."""
    from harness.analysis.calibrate import calibrate
    from harness.analysis.checks import RunData
    from harness.cli.run import run as run_cmd
    from harness.errors import UsageError

    if n_runs:
        if runs:
            raise UsageError("give either run directories or --runs, not both")
        if n_runs < 2:
            raise UsageError("--runs must be at least 2 (calibration compares pairs)")
        run_dirs = run_cmd(scenario=scenario, users=users, duration=duration, warmup=warmup,
                           dataset=dataset, state_dir=state_dir, out=out, rounds=n_runs)
    else:
        if not runs or len(runs) < 2:
            raise UsageError("calibration needs at least 2 A/A runs (or --runs N)")
        run_dirs = [baselines.resolve_run(ref, out / "runs") for ref in runs]
    rules = load_policy(policy, store)
    result = calibrate([RunData(r, log) for r, log in gate.read_runs(run_dirs)],
                       gate.settings_from(rules))
    table = Table(title=f"calibration: {len(run_dirs)} runs, {result.pairs} A/A pairs, "
                        f"false-alarm rate {result.false_alarm_rate:.1%} "
                        f"(misrate {rules.gate.misrate})")
    for col in ("check", "spread (CV)", "tolerance", "detectable", "suggested", "false alarms"):
        table.add_column(col, justify="left" if col == "check" else "right")
    for c in result.checks.values():
        pct = (lambda v: "–" if v is None else f"{v:+.0%}") if c.relative else \
            (lambda v: "–" if v is None else f"{v:+.1f}pt")
        table.add_row(c.name, "–" if c.spread is None else f"{c.spread:.1%}", c.tolerance,
                      pct(c.detectable), pct(c.suggested), str(c.false_alarms))
    stdout.print(table)
    if write_policy is not None:
        write_policy.write_text(suggested_policy(result), encoding="utf-8")
        stdout.print(f"suggested tolerances written to {write_policy}")


def suggested_policy(result) -> str:
    """A policy.toml with per-endpoint latency overrides from a calibration."""
    lines = [("# Suggested by harness calibrate from "
              f"{len(result.runs)} A/A runs ({result.pairs} pairs): tolerances the pairs"),
             "# would have passed. Review before committing.", ""]
    by_endpoint: dict[str, list[str]] = {}
    for c in result.checks.values():
        if c.kind == "latency" and c.relative and c.suggested is not None:
            name = c.name.split(" ", 1)[0]
            by_endpoint.setdefault(c.subject, []).append(f'{name} = "+{c.suggested:.0%}"')
    for endpoint, entries in sorted(by_endpoint.items()):
        lines += [f'[endpoints."{endpoint}"]', *entries, ""]
    return "\n".join(lines)
