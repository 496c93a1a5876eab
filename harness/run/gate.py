"""Gating run directories against a baseline: read, compare, write `gate.json` and its views.

The edge around the pure gate (`harness.analysis.compare`): it reads the
current runs and the baseline (`harness.baselines`) and the policy
(`harness.model.policy`), and writes into the (last) current run's directory
`gate.json`, `junit.xml` and `summary.md` (the gate's verdict first, then the
run's own summary), so a CI job finds them where the run's other files are.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from harness import baselines
from harness.analysis import checks, compare
from harness.model import policy as pol
from harness.model.files import save_json, write_text
from harness.model.gate import GateResult
from harness.model.intervals import IntervalLog
from harness.model.result import RunResult
from harness.outputs.gate_markdown import gate_markdown
from harness.outputs.junit import junit_xml
from harness.outputs.markdown import summary_markdown
from harness.run import layout

GATE_FILE, JUNIT_FILE, SUMMARY_FILE = layout.GATE, "junit.xml", "summary.md"


def settings_from(policy: pol.Policy) -> checks.GateSettings:
    """What the pure gate needs of a policy."""
    g, hard = policy.gate, policy.hard
    return checks.GateSettings(
        tolerance=lambda kind, subject: pol.tolerance_for(policy, kind, subject),
        advisory=lambda kind, subject: pol.is_advisory(policy, kind, subject),
        misrate=g.misrate, block_s=g.block_s, resamples=g.resamples, seed=g.seed,
        min_blocks=g.min_blocks, inconclusive_fails=policy.inconclusive_fails,
        error_rate_max=hard.error_rate_max, agreement_max=hard.agreement_max,
        tenant_leaks_max=hard.tenant_leaks_max)


def read_runs(run_dirs: list[Path]) -> list[tuple[RunResult, IntervalLog | None]]:
    """The current side: each run directory's record and interval log, validated."""
    return [baselines.load(d).runs[0] for d in run_dirs]


def judge(current: list[tuple[RunResult, IntervalLog | None]], baseline: baselines.BaselineRuns,
          policy: pol.Policy, allow_mismatch: bool = False) -> GateResult:
    """The gate's result (ConfigError when the comparison is refused)."""
    gate = compare.compare([checks.RunData(r, log) for r, log in baseline.runs],
                           [checks.RunData(r, log) for r, log in current],
                           settings_from(policy),
                           labels=(f"baseline {baseline.baseline.name}", "current"),
                           allow_mismatch=allow_mismatch)
    gate.decided_at = datetime.now(UTC).isoformat()
    return gate


def write(gate: GateResult, run_dir: Path, result: RunResult | None = None) -> list[Path]:
    """`gate.json`, `junit.xml` and `summary.md` (the gate first) into `run_dir`."""
    save_json(gate, run_dir / GATE_FILE, indent=1)
    write_text(run_dir / JUNIT_FILE, junit_xml(gate))
    summary = gate_markdown(gate)
    if result is not None:
        summary += "\n" + summary_markdown(result)
    write_text(run_dir / SUMMARY_FILE, summary)
    return [run_dir / GATE_FILE, run_dir / JUNIT_FILE, run_dir / SUMMARY_FILE]
