"""`metrics/scrapes.jsonl`: the index of the service's metrics scrapes during a run.

The harness scrapes `/metrics` every couple of seconds; each attempt, answered
or not, is one line here (`ScrapeRecord`), written by `harness.run.monitor`
and read by `harness.run.record`, so a failed scrape is counted and shown,
never silently dropped. The expositions themselves are the `.prom` files
beside it.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from harness.errors import ConfigError

INDEX_FILE = "scrapes.jsonl"


class ScrapeRecord(BaseModel):
    """One scrape attempt: when, and the file it was saved to or why it failed."""

    model_config = ConfigDict(extra="forbid")

    t: float
    file: str | None = None
    """Relative to the metrics directory; None when the scrape failed."""
    error: str | None = None


def load_index(path: Path) -> list[ScrapeRecord]:
    """The scrape index (missing: none); a line cut short by a kill is dropped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    out = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            out.append(ScrapeRecord.model_validate_json(line))
        except ValidationError as exc:
            if n == len(lines):
                break
            raise ConfigError(f"{path}:{n}: invalid scrape record") from exc
    return out
