"""`gate.json`: what the regression gate decided, and why (schema_version 1).

The gate compares a run (or a run set) with a baseline check by check: each
check carries both values, the change with its confidence interval, the
tolerance and a verdict from an equivalence test (`harness.analysis.stats`).
Hard failures (a tenant leak, lost writes, an error rate over the absolute
limit, client and server disagreeing) fail the gate whatever the statistics
say; a saturated load generator means the run cannot be judged. The CLI turns
`GateResult.exit_code` into the process's exit code (DESIGN.md: 0 pass,
1 regressed or hard failure, 3 cannot judge).

Written by the gate, read by `harness runs`, the report and CI; a JSON Schema
generated from these models is committed beside them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

GATE_SCHEMA_VERSION = 1
CheckVerdict = Literal["regressed", "pass", "improved", "inconclusive"]
GateVerdict = Literal["pass", "regressed", "inconclusive", "cannot_judge"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Tolerance(_Model):
    """How far a check may move before it counts: `+15%` relative, or `-5` points."""

    limit: float
    """0.15 for +15% (relative), 5.0 for 5 points (absolute)."""
    relative: bool = True
    higher_is_worse: bool = True
    text: str = ""
    """As the policy wrote it, e.g. "+15%"."""


class CheckResult(_Model):
    """One check: e.g. the p95 of one endpoint, one cache's hit ratio."""

    name: str
    """Unique in the gate, e.g. `p95 GET /api/v1/dashboard/overview`."""
    kind: str
    """latency, throughput_shortfall, error_rate, cache_hit_ratio, upstream_retry_rate,
    upstream_retry_amplification, upstream_failure_rate, upstream_fallback_rate,
    upstream_p95, query_p95, pool_wait, freshness_p95."""
    subject: str
    """The endpoint, cache, query... the check is about."""
    unit: str
    """Of baseline/current: `ms`; `%` for shares (baseline/current in percent, `change`
    and `interval` in points); `ratio` for other ratios (retries per request)."""
    baseline: float | None
    current: float | None
    change: float | None
    """current / baseline for relative tolerances, current - baseline otherwise."""
    interval: tuple[float, float] | None
    """Of `change`, at `confidence` (None when unbounded, e.g. too few rounds)."""
    confidence: float | None
    tolerance: Tolerance
    verdict: CheckVerdict
    advisory: bool = False
    """Shown, never failing the gate (e.g. p99 by default)."""
    p_value: float | None = None
    """Holm-adjusted p-value of the verdict's test."""
    method: str = "block bootstrap"
    reason: str
    """One line a person can act on."""
    advice: str = ""
    """Inconclusive: what would decide it (run longer, more rounds)."""


class HardFailure(_Model):
    kind: Literal["tenant_leak", "error_rate", "lost_writes", "agreement", "unexpected_status"]
    detail: str


class Side(_Model):
    """What one side of the comparison is: never refused, always shown."""

    label: str
    """`baseline NAME`, `current`, `A`, `B`."""
    run_ids: list[str]
    git_commit: str | None = None
    profile: str | None = None
    toggles: dict[str, bool] = {}
    """Toggles that differ from the profile's defaults, as the service reported them."""


class GateResult(_Model):
    """The whole `gate.json`."""

    schema_version: Literal[1] = GATE_SCHEMA_VERSION
    decided_at: str | None = None
    """When the gate ran (UTC, ISO 8601)."""
    verdict: GateVerdict
    exit_code: Literal[0, 1, 3]
    summary: str
    """The verdict in one line, e.g. "regressed: p95 GET /api/v1/dashboard/overview +42%"."""
    baseline: Side
    current: Side
    mismatches: list[str] = []
    """What differs between the sides that would make the comparison meaningless."""
    allowed_mismatch: bool = False
    method: str
    """How intervals were computed (block bootstrap over N s blocks, or Hodges-Lehmann)."""
    misrate: float
    block_s: int
    resamples: int
    seed: int
    checks: list[CheckResult] = []
    hard_failures: list[HardFailure] = []
    cannot_judge: list[str] = []
    """Why the run cannot be judged (a saturated generator): exit 3."""
    inconclusive_fails: bool = False
    """The policy's choice: does an inconclusive gate fail CI?"""


def json_schema() -> dict:
    schema = GateResult.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://example.invalid/harness/gate.schema.json"
    return schema
