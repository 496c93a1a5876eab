"""`harness run --trace`: the `traces` part of `result.json`, the run's spans summarized.

Built by `harness.analysis.traces` from `spans.jsonl` and the clients' kept
samples; read by the tables, `summary.md` and the report.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


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
