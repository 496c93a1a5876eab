"""What the service's own /metrics said about a run: the `server` part of `result.json`.

Built by `harness.analysis.server_metrics` from the scrapes (window values from
the edge scrapes, gauges' peaks and the series from the periodic ones), and read
by the gate, the report and the alert thresholds; one model on both sides.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, WithJsonSchema

from harness.model.latency import Latency


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


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
