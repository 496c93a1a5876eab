"""The result of a run: `result.json`, self-describing and versioned (schema_version 2).

Like pytest-benchmark's JSON, a result carries everything needed to interpret
it later without the machine that produced it: what ran (scenario, profile,
load, dataset, the settings the service reported, the machine), what the
clients measured (exact histograms per endpoint, and per one-second window a
reference into the run's interval log), what the service saw from the inside
for the same window and over time, and whether the numbers can be trusted
(generator saturation, client/server agreement, correctness).

The models here and in the modules of its parts (`latency`, `server`,
`trace_summary`, `overhead`, `chaos`, `client`) are the schema:
`harness/model/result.schema.json` is
generated from them (`python -m harness.model.result > harness/model/result.schema.json`)
and a test keeps the committed file in sync, so consumers in other languages
can validate results without Python. `load` also reads schema_version 1
results (written before windows existed): they load without windows, target
settings or machine.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
)

from harness.errors import ConfigError
from harness.model.chaos import FaultRecord, WriteCheck
from harness.model.client import ClientWindow, Event
from harness.model.endpoint import HistogramKind
from harness.model.files import invalid, save_json
from harness.model.latency import Latency
from harness.model.overhead import TraceOverhead
from harness.model.server import ServerSide
from harness.model.trace_summary import TraceSummary

SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)
SCHEMA_PATH = Path(__file__).parent / "result.schema.json"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatasetInfo(_Model):
    preset: str
    seed: int
    generator_version: int
    anchor_date: str


class TargetSettings(_Model):
    """The settings in force, as the service itself reported them (`target_settings_info`)."""

    profile: str | None = None
    version: str | None = None
    toggles: dict[str, bool] = {}
    """Every optimization toggle after environment overrides."""
    settings: dict[str, str] = {}
    """Pool sizes, cache TTLs, ElevenLabs deadlines, workers...: label -> value."""


class Machine(_Model):
    """Where the run happened: what a comparison across runs must match or explain."""

    cpu_model: str | None = None
    logical_cpus: int
    physical_cpus: int | None = None
    memory_bytes: int | None = None
    kernel: str
    os: str
    pinning: dict[str, list[int]] = {}
    """Role (target, locust) -> CPUs it was pinned to; empty when nothing was pinned."""
    postgres_version: str | None = None
    versions: dict[str, str] = {}
    """python, locust, fastapi, uvicorn, asyncpg, ... -> version."""


class AbortInfo(_Model):
    """Why `harness run --abort-on` stopped the run early (status `aborted`, exit 1):
    the spec as typed, the value that breached it and since when, so the record says
    what a reader of the shortened run needs to know."""

    spec: str
    """The `--abort-on` text as given, e.g. `p95:/api/v1/dashboard/overview>500ms for 30s`."""
    metric: str
    """p50, p90, p95, p99, max (latency), errors (failure rate) or rps."""
    endpoint: str | None
    """The endpoint judged (`METHOD /route`); None: every request together."""
    observed: float
    """The value at the evaluation that fired, in `unit`."""
    threshold: float
    unit: Literal["ms", "%", "rps"]
    breached_since: str
    """When the breach began (the first breaching live figures; UTC ISO)."""
    fired_at: str
    breached_for_s: float
    after_measured_s: float
    """Seconds into the measured phase when it fired."""


class RunInfo(_Model):
    """What ran, where, and when (UTC ISO timestamps; the measured window excludes warm-up)."""

    run_id: str
    status: Literal["complete", "interrupted", "failed", "aborted"]
    """`aborted`: stopped early by an `--abort-on` threshold (see `aborted`)."""
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
    trace_sampling: float | None = None
    """`harness run --trace`: the sampling probability of the run's traces (None: untraced)."""
    trace_interleave_s: int | None = None
    """`--trace-interleave`: the clients sampled at `trace_sampling` only in every other
    block of this many seconds, and nothing between (`trace_overhead` compares them)."""
    trace_guard_s: int | None = None
    """`--trace-guard`: the first seconds of each block left out of that comparison."""
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
    target: TargetSettings | None = None
    machine: Machine | None = None
    aborted: AbortInfo | None = None
    """Runs stopped by `--abort-on` only; absent in older records."""


ERROR_SAMPLES = 3
"""Distinct messages kept per endpoint and failure kind."""


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
    warmup_count: int = 0
    cooldown_count: int = 0
    """Requests started after the test began stopping: not in the latency figures, but
    the service counted them inside the window, so `agreement` does too."""
    server_count: int | None = None
    """Requests the service counted for this route in the same window."""
    error_samples: dict[str, list[str]] = {}
    """Failure kind -> up to `ERROR_SAMPLES` distinct messages seen for it (first seen
    first, each at most 200 characters, secrets scrubbed), so a report can say what a
    failure said and not only how many there were. Empty in older records."""


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
    edge_users: int | None = None
    """Users running when the window opened (None in results written before it was
    recorded). Each may have had a request in flight as the service was scraped, which
    one side counts and the other does not (the clients count by start time, the
    service on completion; the end edge is scraped after the last request, so it has
    none): the counts may differ by this many with nothing wrong."""

    @property
    def unexplained_ratio(self) -> float | None:
        """The share of the gap beyond what the window's opening can explain; the gate's
        agreement limit applies to it (to `diff_ratio` in older results)."""
        if self.server_count is None or not self.client_count:
            return None
        gap = abs(self.client_count - self.server_count) - (self.edge_users or 0)
        return round(max(0, gap) / self.client_count, 6)


Window = ClientWindow
"""One second of the run: its phase, users, and per endpoint the requests that started
in it, exactly as the clients streamed it (`windows.jsonl`, lines of a second added).
Their histograms are in the interval log, tagged `interval_tag(endpoint, kind)`, at
start time `t`."""


class Windows(_Model):
    """The time series: every second from the first spawn to the end."""

    interval_log: str
    """Path of the `.hlog`, relative to the run directory."""
    tags: dict[str, dict[HistogramKind, str]]
    """endpoint -> {"raw": tag, "corrected": tag} in the interval log."""
    seconds: list[Window]


class RunResult(_Model):
    """The whole `result.json`."""

    schema_version: Literal[2] = SCHEMA_VERSION
    run: RunInfo
    endpoints: dict[str, EndpointResult]
    totals: EndpointResult
    windows: Windows | None
    """None only for results read from schema_version 1."""
    server: ServerSide | None
    correctness: Correctness
    generator: Generator
    agreement: Agreement
    events: list[Event] = []
    artifacts: dict[str, str] = Field(default_factory=dict)
    traces: TraceSummary | None = None
    """Traced runs only (`harness run --trace`); absent in older records."""
    chaos: list[FaultRecord] = []
    """The faults `harness run --chaos` injected, in order, each with its recovery."""
    writes: WriteCheck | None = None
    """Runs whose scenario writes: every acknowledged call checked against the database
    at the end (`lost` > 0 fails the gate). None when nothing was written."""
    trace_overhead: TraceOverhead | None = None
    """`--trace-interleave` runs: sampled blocks against unsampled blocks, per endpoint."""


def iso_time(ts: float | None) -> str | None:
    """Epoch seconds as the ISO-8601 UTC text the record stores (None stays None)."""
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


def json_schema() -> dict:
    schema = RunResult.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://example.invalid/harness/result.schema.json"
    return schema


def save(result: RunResult, path: Path) -> None:
    """Write atomically: a reader never sees half a result."""
    save_json(result, path, indent=2)


def upgrade_v1(raw: dict) -> dict:
    """A schema_version 1 document as version 2: no windows, events typed."""
    out = dict(raw, schema_version=SCHEMA_VERSION, windows=None)
    out["events"] = [{"t": e.get("t", 0.0), "name": str(e.get("name", "?")),
                      "ok": e.get("ok", True) is not False,
                      **({"error": str(e["error"])} if e.get("error") else {})}
                     for e in raw.get("events", []) if isinstance(e, dict)]
    return out


def load(path: Path) -> RunResult:
    """Read a result (version 1 or 2); missing, malformed or unknown is a ConfigError."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"no result at {path}") from exc
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from exc
    version = raw.get("schema_version") if isinstance(raw, dict) else None
    if version not in READABLE_VERSIONS:
        raise ConfigError(f"{path}: unsupported schema_version {version!r} "
                          f"(this harness reads {', '.join(map(str, READABLE_VERSIONS))})")
    if version == 1:
        raw = upgrade_v1(raw)
    try:
        return RunResult.model_validate(raw)
    except ValidationError as exc:
        raise invalid(path, exc, "invalid result") from exc


if __name__ == "__main__":
    json.dump(json_schema(), sys.stdout, indent=2)
    sys.stdout.write("\n")
