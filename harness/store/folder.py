"""The folder results store: a runs directory (`reports/runs` by default), nothing more.

Reading it is reading `<dir>/*/result.json` (and `gate.json`): the directory `harness
run` writes is already a store, so history works with no setup. Pushing a run from
elsewhere copies its whole directory in (interval log, report and all), through a
temporary directory renamed into place, so a reader never sees half a run and pushing
the same run twice leaves one copy. Directories whose record does not read are skipped
(a run still being written, or not a run at all).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from pydantic import ValidationError

from harness.errors import ConfigError
from harness.model.result import RunInfo
from harness.model.stored import LoadedRun, StoredRun, order_key
from harness.store import GATE, REPORT, RESULT, Store, read_run_dir


class FolderStore(Store):
    """Runs as directories under `root` (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.location = str(root)
        if root.exists() and not root.is_dir():
            raise ConfigError(f"results store {root} is not a directory")

    def push(self, run_dir: Path) -> StoredRun:
        """Copy `run_dir` into the store as `<root>/<run id>/` (nothing to copy when it is
        already there)."""
        result, gate, version = read_run_dir(run_dir)
        meta = StoredRun.of(result.run, gate.verdict if gate else None, version)
        target = self.root / result.run.run_id
        if target.exists() and target.resolve() == run_dir.resolve():
            return meta
        self.root.mkdir(parents=True, exist_ok=True)
        partial = self.root / f".{result.run.run_id}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        try:
            shutil.copytree(run_dir, partial, symlinks=True)
            if target.exists():
                old = self.root / f".{result.run.run_id}.old"
                shutil.rmtree(old, ignore_errors=True)
                target.rename(old)
                partial.rename(target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                partial.rename(target)
        except OSError as exc:
            shutil.rmtree(partial, ignore_errors=True)
            raise ConfigError(f"cannot push {run_dir} into {self.root}: {exc}") from exc
        return meta

    def _scan(self) -> list[tuple[StoredRun, Path]]:
        found = []
        if not self.root.is_dir():
            return found
        for d in self.root.iterdir():
            if d.name.startswith(".") or not (d / RESULT).is_file():
                continue
            meta = self._meta(d)
            if meta is not None:
                found.append((meta, d))
        return sorted(found, key=lambda m: order_key(m[0]))

    @staticmethod
    def _meta(d: Path) -> StoredRun | None:
        """The metadata from the record's `run` section only (not the whole record
        validated: listing a hundred runs stays fast)."""
        try:
            raw = json.loads((d / RESULT).read_bytes())
            info = RunInfo.model_validate(raw["run"])
            verdict = None
            if (d / GATE).exists():
                verdict = json.loads((d / GATE).read_bytes()).get("verdict")
            return StoredRun.of(info, verdict if isinstance(verdict, str) else None,
                                int(raw.get("schema_version", 2)))
        except (OSError, ValueError, KeyError, TypeError, AttributeError, ValidationError):
            return None

    def list(self, *, scenario: str | None = None, last: int | None = None
             ) -> list[StoredRun]:
        """The runs under `root`, oldest first."""
        return [m for m, _ in self._select(scenario, last)]

    def _select(self, scenario: str | None, last: int | None) -> list[tuple[StoredRun, Path]]:
        runs = [r for r in self._scan() if scenario is None or r[0].scenario == scenario]
        return runs[-last:] if last else runs

    def load(self, *, scenario: str | None = None, last: int | None = None
             ) -> list[LoadedRun]:
        """The selected runs read whole (a record that does not validate is skipped)."""
        loaded = []
        for meta, d in self._select(scenario, last):
            try:
                result, gate, _ = read_run_dir(d)
            except ConfigError:
                continue
            loaded.append(LoadedRun(meta=meta, result=result, gate=gate))
        return loaded

    def report(self, run_id: str) -> Path | None:
        """The run's `report.html` when it exists: in `<root>/<run id>/`, where `harness
        run` and `push` put it, else in whichever directory holds that run."""
        where = self.root / run_id
        if not (where / RESULT).is_file():
            where = next((d for m, d in self._scan() if m.run_id == run_id), where)
        path = where / REPORT
        return path if path.is_file() else None
