"""The results store: where runs are kept so history survives CI machines that start empty.

`open_store(location)` gives one of two kinds, behind one interface (`Store`):

* a folder (default `reports/runs`): just the runs directory `harness run` writes,
  each run read from `<id>/result.json` (+ `gate.json`); pushing copies a run
  directory into it (`harness.store.folder`);
* PostgreSQL, `postgresql://user@host:port/db[?schema=NAME]`: one table
  (`harness_runs`) with the record and the gate as jsonb, the metadata as columns and
  the rendered `report.html` (gzip), upserted by run id (`harness.store.postgres`).

The location comes from `--store`/`--results-store`, else `HARNESS_STORE`, else the
folder. A store that cannot be opened or reached is a `ConfigError`: one line, exit 2.
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from pathlib import Path

from harness.errors import ConfigError
from harness.model import result as results
from harness.model.files import load_json
from harness.model.gate import GateResult
from harness.model.result import RunResult
from harness.model.stored import LoadedRun, StoredRun

DEFAULT_FOLDER = Path("reports") / "runs"
ENV = "HARNESS_STORE"
RESULT, GATE, REPORT = "result.json", "gate.json", "report.html"


class Store(ABC):
    """What every results store does; runs are listed and loaded oldest first."""

    location: str
    """Where it is, printable (a URL without its password)."""

    def check(self) -> None:
        """Fail now (ConfigError) if the store cannot be used, e.g. before a run that is
        to push into it; a folder needs nothing."""

    @abstractmethod
    def push(self, run_dir: Path) -> StoredRun:
        """Keep the run of `run_dir` (its record, gate and report); pushing the same run
        again replaces it (idempotent)."""

    @abstractmethod
    def list(self, *, scenario: str | None = None, last: int | None = None
             ) -> list[StoredRun]:
        """The stored runs (of `scenario`), oldest first; the newest `last` only."""

    @abstractmethod
    def load(self, *, scenario: str | None = None, last: int | None = None
             ) -> list[LoadedRun]:
        """As `list`, with each run's record and gate read back."""

    @abstractmethod
    def report(self, run_id: str) -> Path | bytes | None:
        """The run's rendered page: a file (folder store), its HTML (PostgreSQL), or None
        when the store has none."""


def read_run_dir(run_dir: Path) -> tuple[RunResult, GateResult | None, int]:
    """A run directory's record and gate (ConfigError when they do not read) and the
    record's schema version as written."""
    result = results.load(run_dir / RESULT)
    gate = (load_json(run_dir / GATE, GateResult, f"no gate at {run_dir / GATE}")
            if (run_dir / GATE).exists() else None)
    return result, gate, _version(run_dir / RESULT)


def _version(path: Path) -> int:
    """The schema_version the record declares (1 or 2: `results.load` has checked it)."""
    try:
        return int(json.loads(path.read_bytes()).get("schema_version", 2))
    except (OSError, ValueError, AttributeError):
        return 2


def resolve(location: str | Path | None) -> str:
    """The store's location: the one given, else `$HARNESS_STORE`, else the folder."""
    if location is not None and str(location) != "":
        return str(location)
    return os.environ.get(ENV) or str(DEFAULT_FOLDER)


def is_url(location: str) -> bool:
    """Whether `location` names a PostgreSQL store rather than a folder."""
    return location.startswith(("postgresql://", "postgres://"))


def open_store(location: str | Path | None = None) -> Store:
    """The store at `location` (see `resolve`). A folder is created on the first push,
    never on read; an unsupported URL scheme is a ConfigError."""
    where = resolve(location)
    if is_url(where):
        from harness.store.postgres import PostgresStore

        return PostgresStore(where)
    if "://" in where:
        raise ConfigError(f"unsupported results store {where.split('://')[0]}://... "
                          "(a directory or postgresql://user@host:port/db)")
    from harness.store.folder import FolderStore

    return FolderStore(Path(where))


__all__ = ["DEFAULT_FOLDER", "ENV", "LoadedRun", "Store", "StoredRun", "is_url", "open_store",
           "read_run_dir", "resolve"]
