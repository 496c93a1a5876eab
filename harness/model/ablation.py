"""`ablate.json`: what `harness ablate` ran, and each optimization's measured effect.

`harness ablate` runs the scenario with every optimization toggle turned off alone
(`toggles:NAME=false` over the optimized profile), with all of them on (profile
`optimized`, the reference) and all off (profile `naive`), in interleaved rounds on
one dataset. This record is written when the job starts (every run planned) and
after every run, so an interrupted job still says what finished and where its run
directories are (`reports/runs/<run_id>/`); `effects` holds the comparison over the
complete runs (`harness.analysis.ablation`), written at the end, or when a failed run
or Ctrl-C stops the job early.

Every effect reads the same way: `configuration` against the reference, paired by
round, on one metric of one subject: `change` is `value / reference` (scale
`ratio`: 1.3 is 30% more) or `value - reference` in points (scale `points`: cache
hit ratios), and `low`..`high` its 95% interval (`confidence`) on the same scale.

The models here are the schema, as for `result.json` and `gate.json`:
`harness/model/ablation.schema.json` is generated from them
(`python -m harness.model.ablation > harness/model/ablation.schema.json`) and a test
keeps the committed file in sync and validates real records against it, so a script
in any language can check an `ablate.json` before it pastes a figure from one.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

ABLATION_SCHEMA_VERSION = 1
ABLATE_FILE = "ablate.json"
SCHEMA_PATH = Path(__file__).parent / "ablation.schema.json"
Metric = Literal["p95", "throughput", "db_time", "db_queries", "cache_hit_ratio"]
METRIC_UNITS: dict[str, str] = {
    "p95": "ms", "throughput": "req/s", "db_time": "ms/request",
    "db_queries": "queries/request", "cache_hit_ratio": "%"}
"""Metric -> the unit of `reference` and `value`."""


READING = ("each effect: `configuration` against `reference`, paired by round; `change` is "
           "value / reference (scale ratio) or value - reference in percentage points "
           "(scale points); `low`..`high` its 95% interval on the same scale, null when it "
           "cannot be bounded; `why_not` says why an effect has no estimate")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AblationConfig(_Model):
    """One configuration of the job."""

    name: str
    """`all on`, `all off` or `NAME off` (one toggle of `target_service.settings.Toggles`)."""
    spec: str
    """As `harness ab` spells a side: `profile:optimized`, `toggles:NAME=false`,
    `profile:naive`."""
    off: list[str]
    """The toggles this configuration turns off (all of them for `all off`, whose naive
    profile also runs without the optimization migrations: indexes, the KPI view)."""


class AblationRun(_Model):
    """One run of the job, in running order."""

    round: int
    """1-based."""
    config: str
    """`AblationConfig.name`."""
    run_id: str | None = None
    status: Literal["planned", "complete", "failed"] = "planned"


class AblationEffect(_Model):
    """One configuration against the reference on one metric of one subject."""

    config: str
    metric: Metric
    subject: str
    """The endpoint (`METHOD /route`) of p95, the cache of a hit ratio, `all requests`
    (throughput), `named queries` (DB time and queries per request)."""
    unit: str
    """Of `reference` and `value` (`METRIC_UNITS`)."""
    scale: Literal["ratio", "points"]
    reference: float | None
    """The reference configuration's value over the paired rounds (geometric mean of the
    rounds for ratios, arithmetic for points); None: not measured."""
    value: float | None
    change: float | None
    """`value / reference` (ratio) or `value - reference` in percentage points (points)."""
    low: float | None
    high: float | None
    """The 95% interval of `change` (None when it cannot be bounded)."""
    rounds: int
    """Rounds that paired this configuration with the reference."""
    method: str = ""
    why_not: str = ""
    """Why there is no estimate (e.g. a cache with no lookups in one configuration)."""

    @property
    def clear(self) -> bool:
        """The interval excludes no change (one interval alone, not multiplicity-adjusted)."""
        if self.low is None or self.high is None:
            return False
        none = 1.0 if self.scale == "ratio" else 0.0
        return self.low > none or self.high < none


class AblationRecord(_Model):
    """The whole `ablate.json`."""

    schema_version: Literal[1] = ABLATION_SCHEMA_VERSION
    """Pinned: a record of another version is refused, never half-read."""
    kind: Literal["ablation"] = "ablation"
    command: str
    """The command line that made it (one command regenerates the table)."""
    scenario: str
    dataset: str
    seed: int
    users: int
    duration_s: float
    warmup_s: float
    rounds: int
    reference: str = "all on"
    configurations: list[AblationConfig]
    runs: list[AblationRun]
    """In the order they ran: round 1 in the configurations' order, each later round
    rotated by one more place."""
    effects: list[AblationEffect] = []
    units: dict[str, str] = METRIC_UNITS
    """Metric -> the unit of an effect's `reference` and `value`."""
    reading: str = READING
    """How to read an effect, in the record itself."""
    confidence: float = 0.95
    method: str = ""
    """How the intervals were computed: the unit of resampling."""
    notes: list[str] = []
    created_at: str
    analysed_at: str | None = None


def json_schema() -> dict:
    """The JSON Schema of `ablate.json` (draft 2020-12), as the siblings' are made.

    One addition to what pydantic derives: `schema_version` and `kind` are required.
    The model fills them in when it builds a record, so it need not insist, but a file
    is only self-describing if it says what it is and in which version; the writer
    always writes both, so a file without them did not come from it."""
    schema = AblationRecord.model_json_schema()
    schema["required"] = ["schema_version", "kind",
                          *(f for f in schema["required"] if f not in ("schema_version", "kind"))]
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://example.invalid/harness/ablation.schema.json"
    return schema


if __name__ == "__main__":
    json.dump(json_schema(), sys.stdout, indent=2)
    sys.stdout.write("\n")
