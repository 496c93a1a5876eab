"""`harness ablate`: every optimization turned off alone, interleaved with all on and all off.

The edge around the pure comparison (`harness.analysis.ablation`), built on
`harness ab`'s pieces (`harness.run.ab`): a configuration is an ab spec
(`profile:optimized` for all on, `toggles:NAME=false` for one toggle off,
`profile:naive` for all off) and is configured as an ab side is (`ab.configure`).

* **Order**: round 1 runs the configurations in their order (all on, each toggle
  off in `Toggles` order, all off), round r the same list rotated by r - 1
  places, so each configuration takes every position over as many rounds as there
  are configurations, and a machine drifting during the job favours none of them
  (with two configurations this is `harness ab`'s A B, B A).
* **Dataset**: every run starts the stack on a fresh clone of the one seeded
  dataset (same preset, seed and anchor day: the same rows; the naive profile's
  template lacks only the optimization migrations).
* **Record**: `reports/ablate/<id>/ablate.json` (every run planned first, updated
  after every run; the effects over every complete run written at the end, or
  when a failed run or Ctrl-C stops the job early), `ablate.md` and (the CLI,
  `harness.outputs.ablation_report`) `report.html`; the runs themselves in
  `reports/runs/<run-id>/`.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from pathlib import Path

from harness.analysis import ablation
from harness.analysis.checks import RunData
from harness.errors import UsageError
from harness.model.ablation import ABLATE_FILE, AblationConfig, AblationRecord, AblationRun
from harness.model.files import save_json, write_text
from harness.outputs.ablation_markdown import ablation_markdown
from harness.run import ab, gate
from harness.run.config import RunConfig

MARKDOWN_FILE = "ablate.md"
ALL_ON, ALL_OFF = "all on", "all off"


def toggle_names() -> list[str]:
    """Every optimization toggle, in `target_service.settings.Toggles` order."""
    from target_service.settings import Toggles
    return list(Toggles.model_fields)


def configurations(toggles: list[str] | None = None, all_off: bool = True) -> list[AblationConfig]:
    """All on, then each of `toggles` (default: every toggle) off alone, then all off.
    An unknown or repeated toggle is a `UsageError` naming it."""
    known = toggle_names()
    chosen = known if toggles is None else toggles
    for name in chosen:
        if name not in known:
            raise UsageError(f"unknown toggle {name!r} in --toggles; toggles are "
                             f"{', '.join(known)}")
    if len(set(chosen)) != len(chosen):
        raise UsageError("--toggles names a toggle twice")
    if not chosen and not all_off:
        raise UsageError("nothing to compare with all on: give --toggles or keep all off")
    out = [AblationConfig(name=ALL_ON, spec="profile:optimized", off=[])]
    out += [AblationConfig(name=f"{t} off", spec=f"toggles:{t}=false", off=[t])
            for t in known if t in chosen]
    if all_off:
        out.append(AblationConfig(name=ALL_OFF, spec="profile:naive", off=known))
    return out


def order(n: int, rounds: int) -> list[tuple[int, int]]:
    """(round, configuration index) in running order: round r rotated by r - 1 places."""
    if rounds < 1:
        raise UsageError("--rounds must be at least 1")
    return [(r, (r - 1 + i) % n) for r in range(1, rounds + 1) for i in range(n)]


def configure(config: AblationConfig, base: RunConfig, state_dir: Path) -> RunConfig:
    """The run configuration of one configuration, as `harness ab` configures a side."""
    run_config, _ = ab.configure(ab.parse_spec(config.spec), base, state_dir)
    run_config.validate()
    return run_config


def new_job(out: Path, base: RunConfig, configs: list[AblationConfig], rounds: int,
            command: str) -> tuple[Path, AblationRecord]:
    """The job's directory under `out/ablate/` and its record with every run planned."""
    stamp = datetime.now(UTC)
    job = out / "ablate" / f"{stamp.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(2)}"
    stack = base.stack
    record = AblationRecord(
        command=command, scenario=base.scenario, dataset=stack.dataset, seed=stack.seed,
        users=base.users, duration_s=base.duration_s, warmup_s=base.warmup_s, rounds=rounds,
        reference=ALL_ON, configurations=configs,
        runs=[AblationRun(round=r, config=configs[i].name) for r, i in order(len(configs),
                                                                            rounds)],
        created_at=stamp.isoformat())
    save(record, job)
    return job, record


def save(record: AblationRecord, job: Path) -> None:
    save_json(record, job / ABLATE_FILE, indent=1)


def round_complete(record: AblationRecord, round_no: int) -> bool:
    return all(r.status == "complete" for r in record.runs if r.round == round_no)


def analyse(record: AblationRecord, runs_dir: Path, job: Path, block_s: int = 5,
            resamples: int = 2000, seed: int = 0, allow_mismatch: bool = False) -> list[Path]:
    """The effects over every complete run, paired by round, into `ablate.json` and
    `ablate.md` (both rewritten); the paths written."""
    by_round: dict[int, dict[str, RunData]] = {}
    notes: list[str] = []
    for r in record.runs:
        if r.status != "complete" or not r.run_id:
            continue
        (result, log), = gate.read_runs([runs_dir / r.run_id])
        by_round.setdefault(r.round, {})[r.config] = RunData(result, log)
        if result.generator.saturated:
            notes.append(f"round {r.round}, {r.config} ({r.run_id}): the load generator was "
                         "saturated; its latencies describe the generator as much as the "
                         "service")
        if result.totals.failure_rate > 0.05:
            notes.append(f"round {r.round}, {r.config} ({r.run_id}): "
                         f"{100 * result.totals.failure_rate:.1f}% of requests failed")
    rounds = [by_round.get(n, {}) for n in range(1, record.rounds + 1)]
    measured = [r for r in rounds if r]
    record.effects = ablation.ablation(rounds, record.reference, block_s, resamples, seed,
                                       allow_mismatch) if measured else []
    paired = sum(1 for r in rounds if record.reference in r and len(r) > 1)
    record.method = ablation.method(paired, block_s)
    unfinished = sorted({r.round for r in record.runs if r.status != "complete"})
    if unfinished:
        notes.append("not every run completed (round(s) "
                     f"{', '.join(map(str, unfinished))}): effects pair only the rounds "
                     "where both configurations ran")
    record.notes = notes
    record.analysed_at = datetime.now(UTC).isoformat()
    save(record, job)
    write_text(job / MARKDOWN_FILE, ablation_markdown(record))
    return [job / ABLATE_FILE, job / MARKDOWN_FILE]
