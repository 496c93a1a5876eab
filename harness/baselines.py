"""The baseline store: named sets of runs under `baselines/`, committed beside the policy.

```
baselines/
  policy.toml                 the gate's tolerances (harness.model.policy)
  NAME/
    baseline.json             what the baseline is (Baseline): its runs, what they ran
    <run-id>/result.json      each run's record, byte for byte as the run wrote it
    <run-id>/windows.hlog     and the interval log its `windows.interval_log` names
```

A baseline holds one run, or several rounds of the same configuration (the
gate then compares run-level values). Only what the gate reads is kept: the
record and its interval log, nothing else of the run directory, so a baseline
is small enough to commit and every file in it is already in a stable text
form (`result.json` as `harness run` wrote it, indented; the log as the plugin
wrote it; `baseline.json` indented, one key per line, with a final newline).

Saving is all or nothing: every run is read and checked first (a record that
does not load, an interval log that does not decode, runs of different
scenario, shape, users, dataset or faults: a `ConfigError` and nothing
written), then the baseline is written into a hidden temporary folder beside
its final place and renamed into it. Saving over an existing name needs
`force=True`, and the old baseline is moved away only once the new one is
complete. A folder that is not a baseline (no `baseline.json`) is never
replaced or removed.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Literal

from pydantic import BaseModel, ConfigDict

from harness.errors import ConfigError
from harness.model import intervals
from harness.model import result as results
from harness.model.files import load_json, write_text
from harness.model.intervals import IntervalLog
from harness.model.result import DatasetInfo, RunResult
from harness.run.layout import RESULT

STORE = Path("baselines")
"""The store, relative to the repository root."""
BASELINE_JSON = "baseline.json"
RESERVED = ("bench", "policy.toml")
"""Names in the store that are not baselines (pytest-benchmark results, the policy)."""
LATEST = "latest"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
SHARED = ("scenario", "shape", "users", "dataset", "faults")
"""What every run of one baseline must have in common."""


class Baseline(BaseModel):
    """`baseline.json`: what a baseline is, readable without loading its runs."""

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = 1
    name: str
    created_at: str
    """When it was saved, ISO-8601 UTC."""
    runs: list[str]
    """Run ids, in the order given (the order of the rounds); one folder each."""
    scenario: str
    shape: str
    users: int
    profile: str
    """The runs' profile; several, comma-separated in run order, if they differ."""
    dataset: DatasetInfo
    """The first run's (runs share preset, seed and generator version)."""
    faults: str
    note: str = ""


@dataclass
class BaselineRuns:
    """A loaded baseline: its description and, per run, the record and interval log."""

    baseline: Baseline
    path: Path
    runs: list[tuple[RunResult, IntervalLog | None]]
    """The interval log is None for a run recorded without one (schema_version 1)."""

    @property
    def results(self) -> list[RunResult]:
        return [r for r, _ in self.runs]


@dataclass(frozen=True)
class RunSummary:
    """One run of a baseline, as `harness baseline show` lists it."""

    run_id: str
    schema_version: int
    status: str
    started_at: str
    git_commit: str | None
    profile: str
    duration_s: float
    requests: int
    throughput_rps: float
    p95_ms: float | None
    files: dict[str, int]
    """File (relative to the run's folder) -> bytes."""


@dataclass(frozen=True)
class Shown:
    baseline: Baseline
    path: Path
    runs: list[RunSummary]


# ---------------------------------------------------------------- names and references


def check_name(name: str) -> str:
    """A baseline name: letters, digits, `-`, `_` and `.`, not starting with `.`."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name in RESERVED:
        raise ConfigError(f"invalid baseline name {name!r}: use up to 100 letters, digits, "
                          f"'-', '_' and '.', starting with a letter or digit"
                          + (f" ({name!r} is reserved)" if name in RESERVED else ""))
    return name


def resolve_run(ref: str, runs_dir: Path) -> Path:
    """The run directory a RUN argument names: a run id (in `runs_dir`), a run
    directory's path, or `latest` (the `latest` link beside `runs_dir`)."""
    if ref == LATEST:
        link = runs_dir.parent / LATEST
        if not link.exists():
            why = "points to a run that is gone" if link.is_symlink() else "does not exist"
            raise ConfigError(f"no latest run ({link} {why})")
        path = link.resolve()
    elif "/" not in ref and os.sep not in ref and ref not in (".", "..") \
            and (runs_dir / ref).is_dir():
        path = runs_dir / ref
    elif Path(ref).is_dir():
        path = Path(ref)
    else:
        raise ConfigError(f"no run {ref!r}: neither a run id in {runs_dir} nor a directory")
    if not (path / RESULT).is_file():
        raise ConfigError(f"{path} is not a run directory (no {RESULT})")
    return path


def resolve(ref: str | Path, store_dir: Path) -> Path:
    """The folder a `--baseline NAME|PATH` argument names: a baseline in the store,
    else a path (a baseline folder, or a run directory used as a one-run baseline)."""
    text = str(ref)
    if _NAME.fullmatch(text) and (store_dir / text).is_dir():
        return store_dir / text
    path = Path(ref)
    if path.is_dir() and ((path / BASELINE_JSON).is_file() or (path / RESULT).is_file()):
        return path
    if _NAME.fullmatch(text):
        have = [name for name, _ in list_baselines(store_dir)]
        raise ConfigError(f"no baseline {text!r} in {store_dir} "
                          f"({'have: ' + ', '.join(have) if have else 'it has none'})")
    raise ConfigError(f"{ref} is neither a baseline nor a run directory")


# ---------------------------------------------------------------- reading runs


def _interval_log_path(result: RunResult, run: Path) -> Path | None:
    """Where a run's interval log is; a path that leaves the run directory is refused."""
    if result.windows is None or not result.windows.interval_log:
        return None
    rel = PurePosixPath(result.windows.interval_log)
    if rel.is_absolute() or ".." in rel.parts:
        raise ConfigError(f"{run / RESULT}: interval log {str(rel)!r} is outside the run "
                          f"directory")
    return run / rel


def _read_run(run: Path) -> tuple[RunResult, IntervalLog | None]:
    """A run's record and interval log, both validated (ConfigError naming the file)."""
    result = results.load(run / RESULT)
    log_path = _interval_log_path(result, run)
    return result, intervals.load(log_path) if log_path is not None else None


def _describe(value: object) -> str:
    if isinstance(value, DatasetInfo):
        return f"{value.preset} seed {value.seed} generator {value.generator_version}"
    return str(value)


def _shared(result: RunResult) -> dict[str, object]:
    info = result.run
    dataset = info.dataset.model_copy(update={"anchor_date": ""})  # regenerated daily
    return {"scenario": info.scenario, "shape": info.shape, "users": info.users,
            "dataset": dataset, "faults": info.faults}


def check_compatible(runs: list[RunResult]) -> None:
    """Every run must share scenario, shape, users, dataset and faults with the first."""
    first = runs[0]
    want = _shared(first)
    for other in runs[1:]:
        have = _shared(other)
        diffs = [f"{key} {_describe(have[key])} (not {_describe(want[key])})"
                 for key in SHARED if have[key] != want[key]]
        if diffs:
            raise ConfigError(
                f"runs of one baseline must share {', '.join(SHARED)}: run "
                f"{other.run.run_id} differs from {first.run.run_id} in {'; '.join(diffs)}")


# ---------------------------------------------------------------- the store


def save(store_dir: Path, name: str, run_dirs: list[Path], force: bool = False,
         note: str = "") -> Baseline:
    """Save `run_dirs` as baseline `name` (see the module docstring); returns what was saved."""
    check_name(name)
    if not run_dirs:
        raise ConfigError("a baseline needs at least one run")
    final = store_dir / name
    _check_replaceable(final, name, force)
    loaded = [(run, *_read_run(run)) for run in run_dirs]
    ids = [result.run.run_id for _, result, _ in loaded]
    for run_id in ids:
        if not _NAME.fullmatch(run_id):
            raise ConfigError(f"run id {run_id!r} cannot name a folder")
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ConfigError(f"run {dupes[0]} is given more than once")
    for run, result, _ in loaded:
        if result.run.status != "complete":
            raise ConfigError(f"run {result.run.run_id} ({run}) is {result.run.status}; "
                              f"a baseline is made of complete runs")
    check_compatible([result for _, result, _ in loaded])
    first = loaded[0][1].run
    profiles = list(dict.fromkeys(result.run.profile for _, result, _ in loaded))
    baseline = Baseline(
        name=name, created_at=datetime.now(UTC).isoformat(timespec="seconds"), runs=ids,
        scenario=first.scenario, shape=first.shape, users=first.users,
        profile=",".join(profiles), dataset=first.dataset, faults=first.faults, note=note)

    store_dir.mkdir(parents=True, exist_ok=True)
    tmp = _hidden(store_dir, name, "tmp")
    tmp.mkdir()  # not mkdtemp: its 0700 would become the baseline's mode
    try:
        for run, result, _ in loaded:
            folder = tmp / result.run.run_id
            folder.mkdir()
            shutil.copyfile(run / RESULT, folder / RESULT)
            log_path = _interval_log_path(result, run)
            if log_path is not None:
                dest = folder / log_path.relative_to(run)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(log_path, dest)
        write_text(tmp / BASELINE_JSON, baseline.model_dump_json(indent=2) + "\n")
        _check_replaceable(final, name, force)  # again: another save may have won meanwhile
        _install(tmp, final)
    except OSError as exc:
        raise ConfigError(f"could not write baseline {name} in {store_dir}: {exc} "
                          f"(nothing changed)") from exc
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return baseline


def _check_replaceable(final: Path, name: str, force: bool) -> None:
    if not (final.exists() or final.is_symlink()):
        return
    if not (final.is_dir() and (final / BASELINE_JSON).is_file()):
        raise ConfigError(f"{final} exists and is not a baseline; not replacing it")
    if not force:
        raise ConfigError(f"baseline {name} exists; --force replaces it")


def _hidden(store_dir: Path, name: str, what: str) -> Path:
    """A fresh hidden name beside the baseline (never listed: it starts with `.`)."""
    return store_dir / f".{name}.{what}-{secrets.token_hex(4)}"


def _install(tmp: Path, final: Path) -> None:
    """Rename the complete new folder into place; an old one goes only once it is there."""
    if not final.exists():
        os.rename(tmp, final)
        return
    old = _hidden(final.parent, final.name, "old")
    os.rename(final, old)
    try:
        os.rename(tmp, final)
    except OSError:
        os.rename(old, final)  # put the old one back: nothing changed
        raise
    shutil.rmtree(old, ignore_errors=True)


def _baseline_dir(store_dir: Path, name: str) -> Path:
    check_name(name)
    path = store_dir / name
    if not path.is_dir():
        have = [n for n, _ in list_baselines(store_dir)]
        raise ConfigError(f"no baseline {name!r} in {store_dir} "
                          f"({'have: ' + ', '.join(have) if have else 'it has none'})")
    return path


def read_baseline(path: Path) -> Baseline:
    """A baseline folder's `baseline.json`."""
    return load_json(path / BASELINE_JSON, Baseline,
                     f"{path} is not a baseline (no {BASELINE_JSON})")


def load(store_dir_or_path: Path, name: str | None = None) -> BaselineRuns:
    """A baseline with every run's record and interval log, validated.

    `load(store_dir, name)` reads the store's baseline `name`; `load(path)` a
    baseline folder, or a run directory as a one-run baseline (named after it)."""
    path = _baseline_dir(store_dir_or_path, name) if name is not None else store_dir_or_path
    if name is None and not (path / BASELINE_JSON).is_file() and (path / RESULT).is_file():
        run = _read_run(path)
        info = run[0].run
        baseline = Baseline(name=path.name, created_at=info.ended_at, runs=[info.run_id],
                            scenario=info.scenario, shape=info.shape, users=info.users,
                            profile=info.profile, dataset=info.dataset, faults=info.faults,
                            note="a run directory, not a saved baseline")
        return BaselineRuns(baseline=baseline, path=path, runs=[run])
    baseline = read_baseline(path)
    if not baseline.runs:
        raise ConfigError(f"{path / BASELINE_JSON}: a baseline without runs")
    runs = []
    for run_id in baseline.runs:
        if not _NAME.fullmatch(run_id) or not (path / run_id / RESULT).is_file():
            raise ConfigError(f"{path}: run {run_id!r} is listed in {BASELINE_JSON} "
                              f"but has no {run_id}/{RESULT}")
        runs.append(_read_run(path / run_id))
    return BaselineRuns(baseline=baseline, path=path, runs=runs)


def list_baselines(store_dir: Path) -> list[tuple[str, Baseline | None]]:
    """Every baseline in the store by name (None: its `baseline.json` does not read).

    Folders without a `baseline.json` (`bench/`, hidden temporary folders) are not
    baselines and are not listed."""
    if not store_dir.is_dir():
        return []
    out: list[tuple[str, Baseline | None]] = []
    for path in sorted(store_dir.iterdir()):
        if path.name.startswith(".") or not path.is_dir() \
                or not (path / BASELINE_JSON).is_file():
            continue
        try:
            out.append((path.name, read_baseline(path)))
        except ConfigError:
            out.append((path.name, None))
    return out


def show(store_dir_or_path: Path, name: str | None = None) -> Shown:
    """A baseline and a summary of each run (loading them all: a damaged one is an error)."""
    loaded = load(store_dir_or_path, name)
    rows = []
    for result, _ in loaded.runs:
        folder = loaded.path / result.run.run_id if (loaded.path / result.run.run_id).is_dir() \
            else loaded.path
        kept = [folder / RESULT]
        log_path = _interval_log_path(result, folder)
        if log_path is not None:
            kept.append(log_path)
        info = result.run
        rows.append(RunSummary(
            run_id=info.run_id, schema_version=1 if result.windows is None else 2,
            status=info.status, started_at=info.started_at, git_commit=info.git_commit,
            profile=info.profile, duration_s=info.duration_s, requests=result.totals.count,
            throughput_rps=result.totals.throughput_rps,
            p95_ms=result.totals.latency_ms.p95,
            files={p.relative_to(folder).as_posix(): p.stat().st_size for p in kept}))
    return Shown(baseline=loaded.baseline, path=loaded.path, runs=rows)


def remove(store_dir: Path, name: str) -> Path:
    """Delete baseline `name` from the store; returns the folder that was removed."""
    path = _baseline_dir(store_dir, name)
    if not (path / BASELINE_JSON).is_file():
        raise ConfigError(f"{path} is not a baseline (no {BASELINE_JSON}); not removing it")
    gone = _hidden(store_dir, name, "rm")
    os.rename(path, gone)  # the name disappears at once, whatever rmtree then takes
    shutil.rmtree(gone, ignore_errors=True)
    return path
