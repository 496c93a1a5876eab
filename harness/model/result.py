"""The result of a run: `result.json`, self-describing and versioned.

Like pytest-benchmark's JSON, a result carries everything needed to interpret
it later without the machine that produced it: what ran (scenario, profile,
load, dataset), where (git commit, Python, CPU count), what the clients
measured (exact histograms per endpoint, encoded), what the service saw from
the inside for the same window, and whether the numbers can be trusted
(generator saturation, client/server agreement, correctness).

The models here are the schema: `harness/model/result.schema.json` is
generated from them (`python -m harness.model.result > harness/model/result.schema.json`)
and a test keeps the committed file in sync, so consumers in other languages
can validate results without Python.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.errors import ConfigError

SCHEMA_VERSION = 1
SCHEMA_PATH = Path(__file__).parent / "result.schema.json"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Latency(_Model):
    """Percentiles in milliseconds, computed from the exact (HDR) histogram."""

    count: int
    min: float | None = None
    mean: float | None = None
    p50: float | None = None
    p90: float | None = None
    p95: float | None = None
    p99: float | None = None
    p999: float | None = None
    max: float | None = None


class DatasetInfo(_Model):
    preset: str
    seed: int
    generator_version: int
    anchor_date: str


class RunInfo(_Model):
    """What ran, where, and when (UTC ISO timestamps; the measured window excludes warm-up)."""

    run_id: str
    status: Literal["complete", "interrupted", "failed"]
    scenario: str
    shape: str
    profile: str
    users: int
    spawn_rate: float
    duration_s: float
    warmup_s: float
    workers: int
    target_workers: int
    faults: str
    dataset: DatasetInfo
    database: Literal["embedded", "external"]
    git_commit: str | None
    git_dirty: bool | None
    harness_version: str
    python: str
    platform: str
    cpu_count: int
    started_at: str
    measure_from: str | None
    ended_at: str
    notes: list[str] = []


class EndpointResult(_Model):
    """One endpoint (method + route template) over the measured window, client side."""

    method: str
    route: str
    count: int
    failures: dict[str, int]
    failure_rate: float
    throughput_rps: float
    latency_ms: Latency
    corrected_latency_ms: Latency
    """Latency corrected for coordinated omission (measured from the intended start)."""
    histogram: str
    """Base64 compressed HdrHistogram of raw latency in microseconds."""
    corrected_histogram: str
    x_cache: dict[str, int] = {}
    degraded: int = 0
    partial: int = 0
    server_count: int | None = None
    """Requests the service counted for this route in the same window."""


class CacheStats(_Model):
    hits: float
    misses: float
    stale_hits: float
    evictions: dict[str, float]
    hit_ratio: float | None


class UpstreamStats(_Model):
    """ElevenLabs client behaviour in the window (from the service's metrics)."""

    logical_requests: float
    attempts: float
    retries: dict[str, float]
    retry_rate: float | None
    """Retries per attempt."""
    retry_amplification: float | None
    """Attempts per logical request (1.0 = no retries)."""
    failures: dict[str, float]
    failure_rate: float | None
    timeouts: float
    fallbacks: dict[str, float]
    latency_ms: Latency | None
    circuit_open_max: float | None = None


class QueryStats(_Model):
    count: float
    p95_ms: float | None
    errors: float = 0


class PoolStats(_Model):
    max_size: float | None
    size_max: float | None
    in_use_max: float | None
    waiting_max: float | None
    acquire_p95_ms: float | None
    acquire_timeouts: float


class RouteStats(_Model):
    count: float
    errors_5xx: float
    p95_ms: float | None


class ServerSide(_Model):
    """What the service's own /metrics say about the measured window."""

    scrapes: int
    routes: dict[str, RouteStats]
    caches: dict[str, CacheStats]
    upstream: UpstreamStats | None
    db_pool: PoolStats
    queries: dict[str, QueryStats]
    kpi_view: dict[str, float | None] = {}


class Freshness(_Model):
    samples: int
    timeouts: int
    latency_ms: Latency | None


class Correctness(_Model):
    tenant_leaks: int
    unexpected_statuses: dict[str, dict[str, int]]
    degraded_responses: int
    partial_responses: int
    freshness: Freshness


class GeneratorProcess(_Model):
    role: str
    cpu_max: float | None
    cpu_p90: float | None
    cpu_warnings: int = 0


class MemoryGrowth(_Model):
    """Peak RSS of one process in the run's first and last minute."""

    first_minute_peak_mb: float
    last_minute_peak_mb: float
    growth: float | None
    minutes: float


class Generator(_Model):
    """The load generator's own health: saturated generators measure themselves."""

    processes: list[GeneratorProcess]
    saturated: bool
    memory: dict[str, MemoryGrowth] = {}
    """Harness, target and Locust processes, sampled from outside every 2 s."""
    intended_rps: float | None
    achieved_rps: float | None
    shortfall_ratio: float | None


class Agreement(_Model):
    """Client and server counts of the same requests; a large gap means a broken run."""

    client_count: int
    server_count: int | None
    diff_ratio: float | None


class RunResult(_Model):
    """The whole `result.json`."""

    schema_version: Literal[1] = SCHEMA_VERSION
    run: RunInfo
    endpoints: dict[str, EndpointResult]
    totals: EndpointResult
    server: ServerSide | None
    correctness: Correctness
    generator: Generator
    agreement: Agreement
    events: list[dict[str, float | str]] = []
    artifacts: dict[str, str] = Field(default_factory=dict)


def json_schema() -> dict:
    schema = RunResult.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://example.invalid/harness/result.schema.json"
    return schema


def save(result: RunResult, path: Path) -> None:
    """Write atomically: a reader never sees half a result."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(result.model_dump_json(indent=2))
    os.replace(tmp, path)


def load(path: Path) -> RunResult:
    """Read a result; a missing, malformed or other-version file is a usage error (exit 2)."""
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"no result at {path}") from exc
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict) or raw.get("schema_version") != SCHEMA_VERSION:
        version = raw.get("schema_version") if isinstance(raw, dict) else None
        raise ConfigError(f"{path}: unsupported schema_version {version!r} "
                          f"(this harness reads {SCHEMA_VERSION})")
    try:
        return RunResult.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{path}: invalid result at {where}: {first['msg']}") from exc


if __name__ == "__main__":
    json.dump(json_schema(), sys.stdout, indent=2)
    sys.stdout.write("\n")
