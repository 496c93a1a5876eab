"""`reports/ablate/<id>/report.html`: the ablation's comparison page, the compare page reused.

The compare page (`harness.outputs.report.compare_page`) is two-sided, A against B;
an ablation has many configurations. The page shows the widest pair, all off (B)
against all on (A), paired by round as a `harness ab` job's page is (the paired gate
run now, with the store's policy), every run of both sides in full; each other
configuration's effects (from `ablate.json`) are one note each at the top, and the
full table is `ablate.md` beside it. Without all off (not run, or not complete in
any round beside all on), the first toggle-off configuration that was takes B's place.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from harness.errors import ConfigError
from harness.model.ablation import AblationRecord
from harness.model.files import write_text
from harness.outputs.ablation_markdown import cell
from harness.outputs.report.inputs import (
    Comparison,
    ReportInputs,
    read_side,
    secrets_of,
    store_policy,
)
from harness.run import layout

REPORT_FILE = "report.html"


def _note(record: AblationRecord, config: str) -> str:
    parts = [f"{e.metric} {e.subject.removeprefix('GET ')}: {cell(e).replace('**', '')}"
             for e in record.effects if e.config == config and e.change is not None
             and e.metric in ("p95", "throughput", "db_time")]
    return f"{config} against {record.reference}: " + ("; ".join(parts) or "not measured")


def write_ablation_report(record: AblationRecord, runs_dir: Path, job: Path,
                          store: Path) -> Path:
    """Render the page into `job/report.html`; ConfigError when no round paired B with A."""
    from harness.analysis import paired
    from harness.analysis.compare import RunData
    from harness.outputs.report.compare_page import render_compare
    from harness.run import gate as run_gate

    names = [c.name for c in record.configurations if c.name != record.reference]
    by_round: dict[int, dict[str, Path]] = {}
    for r in record.runs:
        if r.status == "complete" and r.run_id:
            by_round.setdefault(r.round, {})[r.config] = runs_dir / r.run_id

    def paired_with(name: str) -> list[tuple[int, Path, Path]]:
        return [(n, s[record.reference], s[name]) for n, s in sorted(by_round.items())
                if record.reference in s and name in s]

    # all off when it was measured beside all on, else the first configuration that was
    b_name = next((n for n in sorted(names, key=lambda n: n != "all off") if paired_with(n)),
                  None)
    if b_name is None:
        raise ConfigError(f"no round with {record.reference} and another configuration "
                          "complete")
    rounds = paired_with(b_name)
    sides_a = [read_side(a, "A") for _, a, _ in rounds]
    sides_b = [read_side(b, "B", traces=i == 0) for i, (_, _, b) in enumerate(rounds)]
    pairs = [(RunData(x.result, x.log), RunData(y.result, y.log))
             for x, y in zip(sides_a, sides_b, strict=True)]
    spec = {c.name: c.spec for c in record.configurations}
    labels = (f"A {spec[record.reference]}", f"B {spec[b_name]}")
    outcome = paired.compare_paired(pairs, run_gate.settings_from(store_policy(store)), labels,
                                    allow_mismatch=True)
    outcome.gate.decided_at = datetime.now(UTC).isoformat()
    intro = (f"harness ablate job {job.name}: this page is {b_name} (B) against "
             f"{record.reference} (A), paired by round; every configuration's effects are "
             f"in ablate.md and ablate.json beside it, and in short here:")
    notes = [intro]
    notes += [_note(record, n) for n in names]
    comparison = Comparison(
        f"A: {record.reference} ({spec[record.reference]})", f"B: {b_name} ({spec[b_name]})",
        ", ".join(s.result.run.run_id for s in sides_a),
        ", ".join(s.result.run.run_id for s in sides_b), paired=True, job=job.name,
        rounds=[{"round": n, "a": x.result.run.run_id, "b": y.result.run.run_id,
                 "changes": outcome.rounds[i]}
                for i, ((n, _, _), x, y) in enumerate(zip(rounds, sides_a, sides_b,
                                                          strict=True))])
    secrets: set[str] = set()
    for _, a, b in rounds:
        secrets |= secrets_of(layout.dataset_json(a)) | secrets_of(layout.dataset_json(b))
    inputs = ReportInputs(current=sides_b[0], current_rounds=sides_b[1:], baseline=sides_a,
                          gate=outcome.gate, secrets=frozenset(secrets), notes=notes,
                          comparison=comparison)
    target = job / REPORT_FILE
    write_text(target, render_compare(inputs))
    return target
