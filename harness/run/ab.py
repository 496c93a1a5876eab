"""`harness ab`: base and head measured in the same job, interleaved, on one machine.

A stored number from another machine, another day, is what makes CI gates on
shared runners cry wolf; two builds measured in the same job, alternating,
see the same machine. This module is the edge around the pure paired gate
(`harness.analysis.paired`):

* **Specs** say what a side is: `profile:NAME` (a named toggle set),
  `toggles:NAME=VALUE[,...]` (the default profile with those toggles
  overridden) or `ref:GIT_REF` (that revision's `target_service`, checked
  out into a git worktree under `.harness/worktrees/` and started from there,
  its own migrations applied to the run's clone of the same dataset), or
  `trace:P` (the base profile traced at sampling P, as `harness run
  --trace-sampling P`; `trace:off` untraced): what tracing costs, measured
  like any other change. The gate refuses runs traced differently, except
  when that difference is what the job compares (`expected_differences`).
* **Order**: round r runs A then B when r is odd, B then A when even
  (A B, B A, A B, ...), so a machine that drifts during the job favours
  neither side.
* **Record**: `reports/ab/<id>/ab.json` (planned runs first, updated after
  every run) and, once the rounds are done, the gate's `gate.json`,
  `junit.xml` and `summary.md` in the same directory.
"""

from __future__ import annotations

import secrets
import subprocess
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from harness.analysis import paired
from harness.analysis.checks import RunData
from harness.errors import ConfigError, RunFailed, UsageError
from harness.model.ab import AbRecord, AbRun
from harness.model.files import save_json
from harness.run import gate
from harness.run.config import RunConfig
from harness.stack.stack import PROFILES

AB_FILE = "ab.json"
_TRUE, _FALSE = {"true", "1", "on", "yes"}, {"false", "0", "off", "no"}
REPO = Path(__file__).resolve().parents[2]
"""The checkout the harness runs from: where `ref:` revisions are looked up."""


@dataclass(frozen=True)
class Spec:
    """One side of an A/B job, parsed from `profile:`, `toggles:`, `ref:` or `trace:`."""

    text: str
    kind: Literal["profile", "toggles", "ref", "trace"]
    profile: str | None = None
    toggles: dict[str, bool] = field(default_factory=dict)
    ref: str | None = None
    trace_sampling: float | None = None


def _toggle_names() -> set[str]:
    from target_service.settings import Toggles
    return set(Toggles.model_fields)


def parse_spec(text: str) -> Spec:
    """A side's spec, or a `UsageError` naming what is wrong with it."""
    kind, sep, value = text.partition(":")
    value = value.strip()
    if not sep or kind not in ("profile", "toggles", "ref", "trace") or not value:
        raise UsageError(f"malformed A/B spec {text!r}: use profile:NAME, "
                         "toggles:NAME=VALUE[,...], ref:GIT_REF or trace:SAMPLING")
    if kind == "trace":
        return Spec(text, "trace", trace_sampling=_sampling(value, text))
    if kind == "profile":
        if value not in PROFILES:
            raise UsageError(f"unknown profile {value!r} in {text!r}; choose from "
                             f"{', '.join(PROFILES)}")
        return Spec(text, "profile", profile=value)
    if kind == "ref":
        return Spec(text, "ref", ref=value)
    known, toggles = _toggle_names(), {}
    for item in value.split(","):
        name, eq, raw = (part.strip() for part in item.partition("="))
        if not eq or name not in known:
            raise UsageError(f"unknown toggle {name!r} in {text!r}; toggles are "
                             f"{', '.join(sorted(known))}" if eq else
                             f"malformed toggle {item.strip()!r} in {text!r} (use NAME=true|false)")
        if raw.lower() not in _TRUE | _FALSE:
            raise UsageError(f"toggle {name} in {text!r} must be true or false, not {raw!r}")
        toggles[name] = raw.lower() in _TRUE
    return Spec(text, "toggles", toggles=toggles)


def _sampling(value: str, text: str) -> float | None:
    if value.lower() == "off":
        return None
    try:
        sampling = float(value)
    except ValueError:
        sampling = -1.0
    if not 0.0 <= sampling <= 1.0:
        raise UsageError(f"trace sampling in {text!r} must be off or a share from 0 to 1, "
                         f"not {value!r}")
    return sampling


def expected_differences(specs: tuple[Spec, Spec]) -> set[str]:
    """Run facts that differ on purpose between the sides (`compare.mismatches` names)."""
    return {"trace sampling"} if any(s.kind == "trace" for s in specs) else set()


def order(rounds: int) -> list[tuple[int, Literal["A", "B"]]]:
    """(round, side) in running order: A B, B A, A B, ... (rounds 1-based)."""
    if rounds < 1:
        raise UsageError("--rounds must be at least 1")
    out: list[tuple[int, Literal["A", "B"]]] = []
    for r in range(1, rounds + 1):
        out += [(r, "A"), (r, "B")] if r % 2 else [(r, "B"), (r, "A")]
    return out


def worktree(ref: str, state_dir: Path, repo: Path = REPO) -> tuple[Path, str]:
    """A checkout of `ref` under `state_dir/worktrees/<commit>` (reused when there), and
    the commit it resolved to. An unknown ref is a `UsageError`."""
    def git(*args: str, cwd: Path = repo) -> str:
        try:
            return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                                  timeout=120, check=True).stdout.strip()
        except subprocess.CalledProcessError as exc:
            raise RunFailed(f"git {' '.join(args)} failed: "
                            f"{(exc.stderr.strip().splitlines() or ['?'])[-1]}") from exc
        except (OSError, subprocess.SubprocessError) as exc:
            raise RunFailed(f"git {' '.join(args)} failed: {exc}") from exc

    try:
        commit = git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    except RunFailed as exc:
        raise UsageError(f"unknown git ref {ref!r} in {repo}") from exc
    path = (state_dir / "worktrees" / commit[:12]).resolve()
    if (path / "target_service").is_dir():
        if git("rev-parse", "HEAD", cwd=path) == commit:
            return path, commit
        git("worktree", "remove", "--force", str(path))
    git("worktree", "prune")
    path.parent.mkdir(parents=True, exist_ok=True)
    git("worktree", "add", "--detach", "--force", str(path), commit)
    if not (path / "target_service").is_dir():
        raise ConfigError(f"{ref} ({commit[:12]}) has no target_service/ to run")
    return path, commit


def configure(spec: Spec, base: RunConfig, state_dir: Path) -> tuple[RunConfig, str | None]:
    """The run configuration of one side, and the commit a `ref:` side resolved to."""
    stack = base.stack
    if spec.kind == "profile":
        return replace(base, stack=replace(stack, profile=spec.profile)), None
    if spec.kind == "trace":
        return replace(base, trace_sampling=spec.trace_sampling), None
    if spec.kind == "toggles":
        env = {**stack.target_env, **{f"TARGET_TOGGLES__{k.upper()}": "true" if v else "false"
                                      for k, v in spec.toggles.items()}}
        return replace(base, stack=replace(stack, target_env=env)), None
    source, commit = worktree(spec.ref or "HEAD", state_dir)
    return replace(base, stack=replace(stack, target_source=source)), commit


def new_job(out: Path, a: Spec, b: Spec, rounds: int,
            commits: tuple[str | None, str | None]) -> tuple[Path, AbRecord]:
    """The job's directory under `out/ab/` and its record with every run planned."""
    stamp = datetime.now(UTC)
    job = out / "ab" / f"{stamp.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(2)}"
    record = AbRecord(a=a.text, b=b.text, a_commit=commits[0], b_commit=commits[1],
                      rounds=rounds, runs=[AbRun(round=r, side=s) for r, s in order(rounds)],
                      created_at=stamp.isoformat())
    save(record, job)
    return job, record


def save(record: AbRecord, job: Path) -> None:
    save_json(record, job / AB_FILE, indent=1)


def judge(record: AbRecord, runs_dir: Path, job: Path, policy, allow_mismatch: bool,
          expected: set[str] | frozenset[str] = frozenset()) -> paired.Paired:
    """The paired gate over the complete rounds, written into the job directory; facts in
    `expected` may differ between the sides without `allow_mismatch`."""
    by_round: dict[int, dict[str, Path]] = {}
    for r in record.runs:
        if r.status == "complete" and r.run_id:
            by_round.setdefault(r.round, {})[r.side] = runs_dir / r.run_id
    complete = [sides for _, sides in sorted(by_round.items()) if len(sides) == 2]
    if not complete:
        raise RunFailed(f"no complete round to compare (see {job / AB_FILE})")
    pairs = []
    for sides in complete:
        (a, a_log), (b, b_log) = gate.read_runs([sides["A"], sides["B"]])
        pairs.append((RunData(a, a_log), RunData(b, b_log)))
    outcome = paired.compare_paired(pairs, gate.settings_from(policy),
                                    labels=(f"A {record.a}", f"B {record.b}"),
                                    allow_mismatch=allow_mismatch, expected=expected)
    outcome.gate.decided_at = datetime.now(UTC).isoformat()
    record.round_changes = outcome.rounds
    save(record, job)
    gate.write(outcome.gate, job)
    return outcome
