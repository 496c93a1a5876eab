"""`harness report --compare`: two runs, or two run sets, as one page's inputs. The edge.

A side is named as every command names a run (a run id, a run directory, `latest`:
`baselines.resolve_run`) or is a run set: a `harness ab` job (`reports/ab/<id>/`, by
directory or id) with `:A` or `:B` for one of its sides. One job alone is both sides:
its A runs against its B runs, judged by its own `gate.json`, paired by round (or,
when the job stopped before its gate, by the same paired gate run for the page).

Any other pair is judged now, B against A, with the store's policy
(`harness.analysis.compare`, the gate `harness compare` runs), and the page says that
such a verdict is weaker than a paired job's: nothing cancels what the machine did
between the two runs. A refused comparison (other load, dataset, machine) is shown
anyway, with the refusal as a note, as the single-run page does.

Bad input (the same run twice, a job without a complete round, a v1 record, a bare job
beside another side) is a UsageError/ConfigError before anything is read further or
written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from harness import baselines
from harness.errors import ConfigError, UsageError
from harness.model.ab import AbRecord
from harness.model.files import load_json, write_text
from harness.model.gate import GateResult
from harness.outputs.report.inputs import (
    REPORT_FILE,
    Comparison,
    ReportInputs,
    Side,
    read_side,
    secrets_of,
    store_policy,
)
from harness.run import layout

AB_FILE = "ab.json"
"""`harness.run.ab.AB_FILE` (not imported: that module starts git worktrees)."""
WEAK_NOTE = ("one run a side: B is judged against A as a run against a one-run baseline. "
             "Nothing cancels what the machine did between the two runs, so this verdict "
             "is weaker than a paired harness ab job's (rounds interleaved A B, B A), "
             "whatever it says")
SETS_NOTE = ("two run sets, not paired by round: B's runs are judged against A's as "
             "rounds against a baseline's, which cancels less drift than a paired job")


@dataclass
class RunSet:
    """One side as the user named it: its run directories and, for a run set, its job."""

    ref: str
    dirs: list[Path]
    job: Path | None = None
    record: AbRecord | None = None
    side: Literal["A", "B"] | None = None
    rounds: list[int] = field(default_factory=list)


def _job_dir(ref: str, out: Path) -> Path | None:
    if ref and "/" not in ref and ref not in (".", "..") and (out / "ab" / ref / AB_FILE).is_file():
        return out / "ab" / ref
    path = Path(ref)
    return path if (path / AB_FILE).is_file() else None


def read_job(job: Path) -> tuple[AbRecord, list[tuple[int, Path, Path]]]:
    """An ab job's record and its complete rounds (round, A run dir, B run dir); a job
    without one is a ConfigError."""
    record = load_json(job / AB_FILE, AbRecord, f"no {AB_FILE} in {job}")
    runs_dir = job.parent.parent / "runs"  # reports/ab/<id> -> reports/runs
    by_round: dict[int, dict[str, Path]] = {}
    for r in record.runs:
        if r.status == "complete" and r.run_id and "/" not in r.run_id \
                and (runs_dir / r.run_id / layout.RESULT).is_file():
            by_round.setdefault(r.round, {})[r.side] = runs_dir / r.run_id
    rounds = [(n, sides["A"], sides["B"]) for n, sides in sorted(by_round.items())
              if len(sides) == 2]
    if not rounds:
        raise ConfigError(f"{job}: no complete round (both runs recorded in {runs_dir}) "
                          f"to compare; see {job / AB_FILE}")
    return record, rounds


def resolve(ref: str, out: Path, alone: bool = False) -> RunSet | tuple[RunSet, RunSet]:
    """What one `--compare` argument names: a run, one side of a job (`JOB:A`), or,
    when it is the only argument, a whole job (both sides)."""
    base, sep, which = ref.rpartition(":")
    if sep and which in ("A", "B") and (job := _job_dir(base, out)) is not None:
        record, rounds = read_job(job)
        pick = 1 if which == "A" else 2
        return RunSet(ref, [r[pick] for r in rounds], job, record, which, [r[0] for r in rounds])
    job = _job_dir(ref, out)
    if job is not None:
        if not alone:
            raise UsageError(f"{ref} is an ab job: give it alone to compare its A runs with "
                             f"its B runs, or name one of its sides ({ref}:A or {ref}:B)")
        record, rounds = read_job(job)
        numbers = [r[0] for r in rounds]
        return (RunSet(f"{ref}:A", [r[1] for r in rounds], job, record, "A", numbers),
                RunSet(f"{ref}:B", [r[2] for r in rounds], job, record, "B", numbers))
    if alone:
        raise UsageError(f"--compare with one argument needs an ab job (reports/ab/<id>); "
                         f"{ref!r} is not one: give two runs, RUN_A RUN_B")
    return RunSet(ref, [baselines.resolve_run(ref, out / "runs")])


def _sides(refs: list[str], out: Path) -> tuple[RunSet, RunSet]:
    if len(refs) == 1:
        pair = resolve(refs[0], out, alone=True)
        assert isinstance(pair, tuple)
        return pair
    if len(refs) != 2:
        raise UsageError(f"--compare takes RUN_A RUN_B or one ab job, not {len(refs)} "
                         "arguments")
    a, b = (resolve(r, out) for r in refs)
    assert isinstance(a, RunSet) and isinstance(b, RunSet)
    if {d.resolve() for d in a.dirs} == {d.resolve() for d in b.dirs}:
        raise UsageError(f"{refs[0]} and {refs[1]} are the same run(s): nothing to compare")
    return a, b


def _read(run_set: RunSet, name: str) -> list[Side]:
    sides = [read_side(d, name, traces=(name == "B" and i == 0))
             for i, d in enumerate(run_set.dirs)]
    for d, side in zip(run_set.dirs, sides, strict=True):
        if side.result.windows is None:
            raise ConfigError(f"{d / layout.RESULT} is a schema_version 1 record (no "
                              "per-second windows): --compare needs version 2 records")
    return sides


def _label(run_set: RunSet, sides: list[Side], name: str) -> tuple[str, str]:
    """(A/B label, detail line): the job's spec, or the run's profile and commit."""
    first = sides[0].result.run
    commit = (first.git_commit or "unknown")[:12] + (" (dirty)" if first.git_dirty else "")
    if run_set.record is not None:
        r = run_set.record
        spec = r.a if run_set.side == "A" else r.b
        spec_commit = r.a_commit if run_set.side == "A" else r.b_commit
        runs = ", ".join(s.result.run.run_id for s in sides)
        detail = (f"{len(sides)} run(s) of job {run_set.job.name} ({runs}); profile "
                  f"{first.profile}, commit {(spec_commit or first.git_commit or 'unknown')[:12]}")
        return f"{name}: {spec}", detail
    detail = f"{first.scenario}, profile {first.profile}, commit {commit}"
    return f"{name}: {first.run_id}", detail


def _paired_gate(a: RunSet, sides_a: list[Side], sides_b: list[Side], store: Path,
                 notes: list[str]) -> tuple[GateResult, list[dict]]:
    """The job's gate.json, or (a job stopped before its gate) the paired gate now."""
    from harness.analysis import paired
    from harness.analysis.checks import RunData
    from harness.run import gate as run_gate

    assert a.job is not None and a.record is not None
    path = a.job / layout.GATE
    if path.is_file():
        try:
            return load_json(path, GateResult, f"no gate at {path}"), a.record.round_changes
        except ConfigError as exc:
            notes.append(f"{layout.GATE} of the job is unreadable ({exc}); the paired gate "
                         "was run again for this page")
    pairs = [(RunData(x.result, x.log), RunData(y.result, y.log))
             for x, y in zip(sides_a, sides_b, strict=True)]
    settings = run_gate.settings_from(store_policy(store))
    labels = (f"A {a.record.a}", f"B {a.record.b}")
    try:
        outcome = paired.compare_paired(pairs, settings, labels)
    except ConfigError as exc:
        notes.append(f"the gate refuses these rounds ({exc}); the verdicts are only indicative")
        outcome = paired.compare_paired(pairs, settings, labels, allow_mismatch=True)
    outcome.gate.decided_at = datetime.now(UTC).isoformat()
    if not path.is_file():
        notes.append("the job has no gate.json (it stopped before its gate): the paired "
                     "gate was run for this page over its complete rounds")
    return outcome.gate, outcome.rounds


def _gate(sides_a: list[Side], sides_b: list[Side], store: Path,
          notes: list[str]) -> GateResult:
    """B's runs against A's, now, with the store's policy (unpaired)."""
    from harness.analysis import checks, compare
    from harness.run import gate as run_gate

    base = [checks.RunData(s.result, s.log) for s in sides_a]
    cur = [checks.RunData(s.result, s.log) for s in sides_b]
    settings = run_gate.settings_from(store_policy(store))
    try:
        gate = compare.compare(base, cur, settings, labels=("A", "B"))
    except ConfigError as exc:
        notes.append(f"the gate refuses this comparison ({exc}); the figures below compare "
                     "anyway and the verdict is only indicative")
        gate = compare.compare(base, cur, settings, labels=("A", "B"), allow_mismatch=True)
    gate.decided_at = datetime.now(UTC).isoformat()
    return gate


def load_compare(refs: list[str], out: Path = Path("reports"),
                 store: Path = baselines.STORE) -> ReportInputs:
    """The compare page's inputs: B (`current`, `current_rounds`) against A (`baseline`)."""
    a, b = _sides(refs, out)
    sides_a, sides_b = _read(a, "A"), _read(b, "B")
    notes: list[str] = []
    paired = a.job is not None and a.job == b.job and a.side == "A" and b.side == "B"
    rounds: list[dict] = []
    if paired:
        gate, changes = _paired_gate(a, sides_a, sides_b, store, notes)
        for i, n in enumerate(a.rounds):
            rounds.append({"round": n, "a": sides_a[i].result.run.run_id,
                           "b": sides_b[i].result.run.run_id,
                           "changes": changes[i] if i < len(changes) else {}})
    else:
        gate = _gate(sides_a, sides_b, store, notes)
        notes.insert(0, WEAK_NOTE if len(sides_a) == len(sides_b) == 1 else SETS_NOTE)
    (a_label, a_detail), (b_label, b_detail) = _label(a, sides_a, "A"), _label(b, sides_b, "B")
    comparison = Comparison(a_label, b_label, a_detail, b_detail, paired=paired,
                            job=a.job.name if paired and a.job else None, rounds=rounds)
    secrets: set[str] = set()
    for d in [*a.dirs, *b.dirs]:
        secrets |= secrets_of(layout.dataset_json(d))
    return ReportInputs(current=sides_b[0], current_rounds=sides_b[1:], baseline=sides_a,
                        baseline_name=None, gate=gate, secrets=frozenset(secrets), notes=notes,
                        comparison=comparison)


def default_output(refs: list[str], inputs: ReportInputs, out: Path) -> Path:
    """A job's page in its directory (`reports/ab/<id>/report.html`); any other pair's
    under `reports/compare/`, named after both sides' first runs."""
    job = _job_dir(refs[0], out) if len(refs) == 1 else None
    if job is not None:
        return job / REPORT_FILE
    a, b = inputs.baseline[0].result.run.run_id, inputs.current.result.run.run_id
    return out / "compare" / f"{a}-vs-{b}.html"


def write_compare(refs: list[str], out: Path = Path("reports"), output: Path | None = None,
                  store: Path = baselines.STORE) -> Path:
    """Render the compare page of `refs` (RUN_A RUN_B, or one ab job) and write it to
    `output` (default: `default_output`); ConfigError/UsageError before anything is
    written."""
    from harness.outputs.report.compare_page import render_compare

    inputs = load_compare(refs, out, store)
    html = render_compare(inputs)
    target = Path(output) if output is not None else default_output(refs, inputs, out)
    write_text(target, html)
    return target
