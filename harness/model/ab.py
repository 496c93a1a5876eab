"""`ab.json`: what `harness ab` ran, in which order, and what each round measured.

Written when the job starts (every planned run, none done) and again after each
run, so an interrupted A/B job still says which rounds finished and where
their run directories are; the gate over the finished pairs goes beside it in
`gate.json`, `junit.xml` and `summary.md`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

AB_SCHEMA_VERSION = 1


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AbRun(_Model):
    """One run of the job: its round, its side, and its run directory once it has one."""

    round: int
    """1-based."""
    side: Literal["A", "B"]
    run_id: str | None = None
    status: Literal["planned", "complete", "failed"] = "planned"


class AbRecord(_Model):
    """The job: both sides' specs, the interleaved order, and per-round estimates."""

    schema_version: int = AB_SCHEMA_VERSION
    a: str
    """The A spec as given, e.g. `profile:optimized`."""
    b: str
    a_commit: str | None = None
    b_commit: str | None = None
    rounds: int
    runs: list[AbRun]
    """In the order they ran: A B, B A, A B, ..."""
    round_changes: list[dict[str, float | None]] = []
    """Per round (1-based order), check name -> B against A in that round alone (a ratio
    for latencies and relative rates, a difference of shares otherwise)."""
    created_at: str
