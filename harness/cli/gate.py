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
                      "–" if r.p95_ms is None else f"{r.p95_ms:,.1f}")
    stdout.print(table)


@baseline_app.command("rm")
def baseline_rm(name: str, store: StoreOpt = Path("baselines")) -> None:
    """Remove a baseline from the store."""
    stdout.print(f"removed {baselines.remove(store, baselines.check_name(name))}")
