"""`metrics/scrapes.jsonl`: the index of the service's metrics scrapes during a run.

The harness scrapes `/metrics` every couple of seconds; each attempt, answered
or not, is one line here (`ScrapeRecord`), written by `harness.run.monitor`
and read by `harness.run.record`, so a failed scrape is counted and shown,
never silently dropped. The expositions themselves are the `.prom` files
beside it.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

from harness.model.files import read_jsonl

INDEX_FILE = "scrapes.jsonl"


class ScrapeRecord(BaseModel):
    """One scrape attempt: when, and the file it was saved to or why it failed."""

    model_config = ConfigDict(extra="forbid")

    t: float
    file: str | None = None
    """Relative to the metrics directory; None when the scrape failed."""
    error: str | None = None


def load_index(path: Path) -> list[ScrapeRecord]:
    """The scrape index (missing: none)."""
    return read_jsonl(path, ScrapeRecord)
