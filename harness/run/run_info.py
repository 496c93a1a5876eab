"""`run.json`'s record of what ran and where: the configuration, the code, the machine.

Built at the end of every run (`Run._write_info`), on every path, so even an
interrupted run directory says what it was; `harness.run.record` reads it back.
The commit is asked of the tree the target runs from (`--target-ref` may check
out another revision), not of the working directory.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from importlib import metadata
from pathlib import Path

from harness.model.result import AbortInfo, DatasetInfo, RunInfo, iso_time
from harness.run import layout, machine
from harness.run.config import RunConfig


def git_state(source: Path | None = None) -> tuple[str | None, bool | None]:
    """The commit the target service runs from (the harness's own tree, or the checkout
    of another revision), and whether tracked files differ from it; asked of the source
    tree, not the working directory."""
    source = source.resolve() if source else Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=5, check=True, cwd=source).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                    check=False, capture_output=True, text=True, timeout=5,
                                    cwd=source).stdout.strip())
        return commit, dirty
    except (OSError, subprocess.SubprocessError):
        return None, None


def harness_version() -> str:
    try:
        return metadata.version("dashboard-perf-harness")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def run_info(cfg: RunConfig, run_dir: Path, *, run_id: str, status: str, started_at: float,
             notes: list[str], aborted: AbortInfo | None = None,
             postgres_version: str | None = None) -> RunInfo:
    """The record of a run of `cfg` whose directory is `run_dir` (its dataset manifest is
    read from there; a missing one leaves the configuration's dataset)."""
    manifest = _read_manifest(layout.dataset_json(run_dir))
    commit, dirty = git_state(cfg.stack.target_source)
    return RunInfo(
        run_id=run_id, status=status, scenario=cfg.scenario,
        shape=cfg.shape or "steady", profile=cfg.profile, users=cfg.users,
        spawn_rate=cfg.spawn_rate, duration_s=cfg.duration_s, warmup_s=cfg.warmup_s,
        workers=cfg.workers + cfg.remote_workers, target_workers=cfg.stack.target_workers,
        faults=cfg.stack.faults, trace_sampling=cfg.trace_sampling,
        trace_interleave_s=cfg.trace_interleave_s,
        trace_guard_s=cfg.trace_guard_s if cfg.trace_interleave_s is not None else None,
        dataset=DatasetInfo(preset=manifest.get("preset", cfg.stack.dataset),
                            seed=manifest.get("seed", cfg.stack.seed),
                            generator_version=manifest.get("generator_version", 0),
                            anchor_date=manifest.get("anchor_date", "")),
        database="external" if cfg.stack.database_url else "embedded",
        git_commit=commit, git_dirty=dirty, harness_version=harness_version(),
        python=platform.python_version(), platform=platform.platform(),
        cpu_count=os.cpu_count() or 1, started_at=iso_time(started_at),
        measure_from=None, ended_at=iso_time(time.time()), notes=notes, aborted=aborted,
        machine=machine.describe(
            pinning={"target": cfg.stack.target_cpus, "locust": cfg.locust_cpus},
            postgres_version=postgres_version))


def _read_manifest(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
