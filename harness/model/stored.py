"""A run as the results store keeps it: what to filter by, and the documents themselves.

The results store (`harness.store`: the `reports/runs` folder, or PostgreSQL) is where
history lives when CI machines start empty. Each stored run is its `result.json`
(schema v2; PostgreSQL keeps a v1 record upgraded, a folder keeps the file it was
given), its `gate.json` when it was gated, and a
`StoredRun`: the few fields `harness store list` and `harness report --history` filter
and sort by, taken from the record so they can never disagree with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict

from harness.model.gate import GateResult
from harness.model.result import RunInfo, RunResult

STORED_FORMAT = 1


class StoredRun(BaseModel):
    """One stored run's metadata (the PostgreSQL table's columns, a folder's listing).

    `machine` is one line (CPU model, logical CPUs, kernel) because runs on different
    machines are not comparable, and a history page must say so; `verdict` is the gate's
    (None: not gated)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal[1] = STORED_FORMAT
    run_id: str
    scenario: str
    profile: str
    shape: str
    status: str
    users: int
    git_commit: str | None
    started_at: str
    """UTC ISO 8601, as in the record: history is ordered by it (then by run id)."""
    machine: str | None
    verdict: str | None
    schema_version: int
    """The record's schema version as it was pushed (a v1 record is stored upgraded)."""

    @classmethod
    def of(cls, info: RunInfo, verdict: str | None, schema_version: int) -> StoredRun:
        """The metadata of a record's `run` section and its gate's verdict."""
        m = info.machine
        machine = (f"{m.cpu_model or 'unknown CPU'} · {m.logical_cpus} CPUs · {m.kernel}"
                   if m is not None else info.platform or None)
        return cls(run_id=info.run_id, scenario=info.scenario, profile=info.profile,
                   shape=info.shape, status=info.status, users=info.users,
                   git_commit=info.git_commit, started_at=info.started_at, machine=machine,
                   verdict=verdict, schema_version=schema_version)

    @property
    def commit(self) -> str:
        """The commit abbreviated as `git log --oneline` shows it (`-` when unknown)."""
        return self.git_commit[:10] if self.git_commit else "-"


def order_key(run: StoredRun) -> tuple[str, str]:
    """Oldest first: by start time, then run id (two runs can start the same second)."""
    return run.started_at, run.run_id


@dataclass(frozen=True)
class LoadedRun:
    """A stored run read back whole: its metadata, record and gate (None: not gated)."""

    meta: StoredRun
    result: RunResult
    gate: GateResult | None
