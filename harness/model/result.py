"""The result of a run: `result.json`, self-describing and versioned (schema_version 2).

Like pytest-benchmark's JSON, a result carries everything needed to interpret
it later without the machine that produced it: what ran (scenario, profile,
load, dataset, the settings the service reported, the machine), what the
clients measured (exact histograms per endpoint, and per one-second window a
reference into the run's interval log), what the service saw from the inside
for the same window and over time, and whether the numbers can be trusted
(generator saturation, client/server agreement, correctness).

The models here are the schema: `harness/model/result.schema.json` is
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
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    WithJsonSchema,
)

from harness import hdr
from harness.errors import ConfigError
from harness.model.chaos import FaultRecord, WriteCheck
from harness.model.client import ClientWindow, Event
from harness.model.endpoint import HistogramKind
from harness.model.files import invalid, save_json
from harness.model.overhead import TraceOverhead

SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)
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

    @classmethod
    def of(cls, histogram: hdr.HdrHistogram | str | None) -> Latency:
        """The one way a histogram (or its encoding) becomes percentiles."""
        if histogram is None or histogram == "":
            return cls(count=0)
        if isinstance(histogram, str):
            histogram = hdr.decode(histogram)
        return cls(**hdr.summary(histogram))


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


def _bucket_counts(value: object) -> object:
    return [int(x) for x in value.split()] if isinstance(value, str) else value


BucketCounts = Annotated[
    list[Annotated[int, Field(ge=0)]],
    BeforeValidator(_bucket_counts),
    PlainSerializer(lambda counts: " ".join(map(str, counts)), return_type=str,
                    when_used="json"),
    WithJsonSchema({"type": "string", "pattern": "^([0-9]+( [0-9]+)*)?$",
                    "description": "Observations per bucket, space-separated."}),
]
"""Observations per bucket: a list in Python, one string of integers in JSON ("3 0 1"):
`result.json` is indented, and a list there would put every count on a line of its
own (the default scenario for 10 minutes: 1.05 MB without the histograms, 1.68 MB with
them as lists, 1.32 MB as strings)."""


class ServerSample(_Model):
    """One scrape of the service, as the change since the scrape before it.

    Counters are deltas over `(since, t]` (a counter that went down, e.g. a
    restarted worker, counts from zero); gauges are the values at `t`. Rows of
    the measured window add up exactly to the window-edge scrapes."""

    t: float
    since: float
    phase: Literal["before", "measured", "after"]
    edge: Literal["start", "end"] | None = None
    requests: dict[str, float] = {}
    """Per "METHOD route"."""
    errors_5xx: dict[str, float] = {}
    cache_hits: dict[str, float] = {}
    cache_misses: dict[str, float] = {}
    cache_stale_hits: dict[str, float] = {}
    cache_evictions: dict[str, dict[str, float]] = {}
    """cache -> cause -> evictions."""
    upstream_requests: float = 0.0
    upstream_attempts: float = 0.0
    upstream_retries: dict[str, float] = {}
    upstream_failures: dict[str, float] = {}
    upstream_fallbacks: dict[str, float] = {}
    breaker_state: float | None = None
    pool_size: float | None = None
    pool_in_use: float | None = None
    pool_waiting: float | None = None
    kpi_staleness_s: float | None = None
    histograms: dict[str, dict[str, BucketCounts]] = {}
    """Histogram (`exposition.HISTOGRAMS`: named queries, pool acquire, KPI view
    change-to-visible, ElevenLabs attempts) -> series label (the query name, the
    attempt's outcome; "" when unlabelled) -> observations per bucket over
    `(since, t]`, bucket k ending at `ServerSide.histogram_bounds[histogram][k]`
    and the last past the highest bound (+Inf). Trailing empty buckets are left
    out and series without observations omitted."""


class FailedScrape(_Model):
    t: float
    error: str


class ServerSide(_Model):
    """What the service's own /metrics say about the measured window, and over time."""

    scrapes: int
    routes: dict[str, RouteStats]
    caches: dict[str, CacheStats]
    upstream: UpstreamStats | None
    db_pool: PoolStats
    queries: dict[str, QueryStats]
    kpi_view: dict[str, float | None] = {}
    series: list[ServerSample] = []
    histogram_bounds: dict[str, list[float]] = {}
    """Histogram -> the finite upper bounds (`le`, seconds) of its buckets, ascending: what
    the counts of `ServerSample.histograms` refer to (empty in records made before
    the series kept histograms)."""
    failed_scrapes: list[FailedScrape] = []
    """Scrapes that got no answer: shown, never silently dropped."""


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


TRACE_CATEGORIES = ("app", "db", "pool_wait", "cache", "upstream", "serialization")
"""Where a traced request's server time goes (`harness.analysis.traces`)."""


class TimeBreakdown(_Model):
    """A traced request's server time by category: exclusive (self) time over the span
    tree, parallel spans sharing each instant, so the categories add up to the server
    span's duration (ms), or to 1 as shares."""

    app: float = 0.0
    """The handler's own code: the server span and spans of no other category (response
    serialization included while the service has no serialization span)."""
    db: float = 0.0
    """Database client spans (asyncpg queries)."""
    pool_wait: float = 0.0
    """Waiting for a pooled connection (`db.pool.acquire`: made only for an acquire that
    waited, so an acquire served at once counts in its parent's category)."""
    cache: float = 0.0
    """`cache.*` spans' own time: lookups that missed, loads around their queries,
    single-flight waits (a lookup answered from memory is an event, not a span)."""
    upstream: float = 0.0
    """ElevenLabs: `elevenlabs.*` spans and the HTTP client spans under them."""
    serialization: float = 0.0
    """Spans named `serialize*`/`render*` (encoding a response); 0 in a run without any."""


class SlowTrace(_Model):
    """One of an endpoint's slowest sampled requests, and where its time went."""

    trace_id: str
    t: float
    """When the request started (epoch seconds)."""
    client_ms: float | None = None
    """Latency the client measured (None: picked by server duration, no client sample)."""
    failure: str | None = None
    server_ms: float | None = None
    """Duration of its server span (None: not in the span file)."""
    network_queue_ms: float | None = None
    """`client_ms - server_ms`: network, accept queue, event loop, the generator. A few
    microseconds below 0 is possible: the server span ends after its last write returned,
    and on the wall clock where the client times on the monotonic one."""
    spans: int = 0
    breakdown_ms: TimeBreakdown | None = None


class EndpointTraces(_Model):
    traced_requests: int = 0
    """Requests the client sent with a sampled traceparent in the measured window."""
    server_traces: int = 0
    """Request traces of this endpoint in the span file, started in the measured window."""
    mean_ms: TimeBreakdown = TimeBreakdown()
    """Per trace, on average."""
    shares: TimeBreakdown = TimeBreakdown()
    slowest: list[SlowTrace] = []
    """Slowest first (by client latency)."""


class ClientServerGap(_Model):
    """Client latency minus server span duration over the kept samples (ms)."""

    samples: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None
    max_ms: float | None = None


class TraceSummary(_Model):
    """`harness run --trace`: the service's spans of the run (`spans.jsonl`), summarized."""

    sampling: float | None = None
    spans_file: str = "spans.jsonl"
    spans: int = 0
    traces: int = 0
    """Request traces (rooted at a server span) started in the measured window."""
    background_traces: int = 0
    """Traces without a server span: jobs, cache refreshes, KPI view refreshes."""
    shares: TimeBreakdown = TimeBreakdown()
    """Over every request trace of the window: each category's share of server time."""
    endpoints: dict[str, EndpointTraces] = {}
    client_vs_server: ClientServerGap = ClientServerGap()
    unmatched: list[str] = []
    """Kept client trace ids without a server span (the first 20)."""
    unmatched_count: int = 0
    no_spans: list[str] = []
    """Categories no span of the file belongs to: 0 because unmeasured or never slow
    enough to be traced (`pool_wait` when no acquire waited), not because free."""
    malformed_lines: int = 0
    notes: list[str] = []


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
