"""Prometheus metrics (and the request-timing middleware) for the service.

Nothing here is built at import time: `ServiceMetrics(registry)` is created in
`create_app`, so tests can build many apps side by side, each with its own
registry. When the service runs with several uvicorn workers, the harness sets
`PROMETHEUS_MULTIPROC_DIR` and `/metrics` aggregates every worker's values
(prometheus-client's multiprocess mode); gauges declare how they aggregate.

The harness reads these series at the start and end of a measured window, so
histogram buckets are chosen to resolve the latencies a dashboard API has
(sub-millisecond cache hits to multi-second naive queries). Every family, its
labels and their bounded values, and how it maps to OpenTelemetry's HTTP
conventions are in docs/metrics.md (`tests/target_service/test_metrics_catalog.py`
holds the table and a real scrape to each other).

`target_settings_info{profile=...,toggle_kpi_view=...,...} 1` says which
settings were really in force (see `publish_settings`), so a run record shows
an environment override instead of assuming the profile's defaults.

Exemplars: a request whose server span is sampled (tracing on, see
`target_service/tracing.py`) is observed into `http_request_duration_seconds`
with the exemplar `{trace_id, span_id}` (hex ids only: nothing from the request
itself), linking the bucket to its trace. Exemplars exist only in the
OpenMetrics format: `/metrics` serves it to a scraper that asks
(`Accept: application/openmetrics-text`, as Prometheus does with exemplar
storage on) and the classic text format to everyone else (the harness's
scrapers). prometheus-client keeps no exemplars in multiprocess mode (several
workers), so there they are missing, not wrong.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar

from opentelemetry import trace
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.openmetrics import exposition as openmetrics
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from target_service.cache.metrics import CacheMetricFamilies

LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.075, 0.1,
    0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0,
)


HTTP_METHODS = frozenset({"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST",
                          "PUT", "TRACE"})
"""The `method` label's values beside `_OTHER` (OpenTelemetry's HTTP semconv set): a
client can send any token as a method, and each would otherwise be a new series."""


def method_label(method: str) -> str:
    """The bounded `method` label of a request method: itself if known, else `_OTHER`."""
    return method if method in HTTP_METHODS else "_OTHER"


SETTINGS_INFO = "target_settings_info"
"""The info-style metric of the effective settings; its value is always 1."""

OPENMETRICS = "application/openmetrics-text"
_ACCEPT: ContextVar[str | None] = ContextVar("target_service_metrics_accept", default=None)
"""The `Accept` header of the `/metrics` request being served (set by the middleware)."""


def wants_openmetrics(accept: str | None) -> bool:
    """Whether an `Accept` header asks for OpenMetrics (Prometheus sends it first, with a
    q-value; a `q=0` entry refuses it)."""
    for part in (accept or "").split(","):
        media, *params = (p.strip() for p in part.split(";"))
        if media.lower() == OPENMETRICS:
            return not any(p.replace(" ", "") in ("q=0", "q=0.0", "q=0.00", "q=0.000")
                           for p in params)
    return False


def trace_exemplar() -> dict[str, str] | None:
    """`{trace_id, span_id}` of the current span when it is sampled, else None."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid or not ctx.trace_flags.sampled:
        return None
    return {"trace_id": format(ctx.trace_id, "032x"), "span_id": format(ctx.span_id, "016x")}


def multiprocess_dir() -> str | None:
    """The prometheus multiprocess directory when the service runs several workers."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class ServiceMetrics:
    """HTTP, database and KPI-view metrics of one service process."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.settings_info: Gauge | None = None  # publish_settings() labels it
        self.render_hooks: list[Callable[[], None]] = []
        """Called before each render (the runtime monitor samples CPU and memory)."""
        # one set of cache_* families per registry, shared by every named cache
        self.cache_families = CacheMetricFamilies(registry)
        self.http_duration = Histogram(
            "http_request_duration_seconds",
            "Request duration by route template (server side, excluding socket time).",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.http_in_flight = Gauge(
            "http_requests_in_flight",
            "Requests being handled right now.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.worker_requests = Gauge(
            "target_worker_requests",
            "HTTP requests this worker process has completed since it started. A gauge so "
            "multiprocess mode keeps one series per worker (pid label): balance across "
            "workers; rates come from http_request_duration_seconds_count.",
            registry=registry,
            multiprocess_mode="liveall",
        )
        self.db_query_duration = Histogram(
            "db_query_duration_seconds",
            "Duration of each named SQL query, including waiting for its result.",
            ["query"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.db_query_errors = Counter(
            "db_query_errors_total", "Named queries that raised.", ["query", "kind"],
            registry=registry,
        )
        self.db_pool_size = Gauge(
            "db_pool_size", "Open connections in the pool.", registry=registry,
            multiprocess_mode="livesum",
        )
        self.db_pool_max = Gauge(
            "db_pool_max_size", "Configured maximum pool size.", registry=registry,
            multiprocess_mode="livesum",
        )
        self.db_pool_in_use = Gauge(
            "db_pool_in_use", "Connections checked out of the pool.", registry=registry,
            multiprocess_mode="livesum",
        )
        self.db_pool_waiting = Gauge(
            "db_pool_waiting", "Tasks waiting to acquire a connection.", registry=registry,
            multiprocess_mode="livesum",
        )
        self.db_pool_acquire = Histogram(
            "db_pool_acquire_seconds",
            "Time spent waiting for a pool connection.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.db_pool_acquire_timeouts = Counter(
            "db_pool_acquire_timeouts_total", "Acquires that gave up.", registry=registry,
        )
        self.kpi_refreshes = Counter(
            "kpi_view_refreshes_total", "KPI view refreshes by outcome.", ["outcome"],
            registry=registry,
        )
        self.kpi_refresh_duration = Histogram(
            "kpi_view_refresh_seconds", "Duration of REFRESH MATERIALIZED VIEW CONCURRENTLY.",
            buckets=LATENCY_BUCKETS, registry=registry,
        )
        self.kpi_staleness = Gauge(
            "kpi_view_staleness_seconds",
            "Age of the oldest change not yet visible in the KPI view (0 when fresh).",
            registry=registry, multiprocess_mode="max",
        )
        self.kpi_change_to_visible = Histogram(
            "kpi_view_change_to_visible_seconds",
            "From the first unrefreshed change notification to the end of the refresh.",
            buckets=LATENCY_BUCKETS, registry=registry,
        )

        self.cache_invalidations = Counter(
            "cache_invalidation_notifications_total",
            "Change notifications acted on, by channel.", ["channel"], registry=registry,
        )
        self.cache_listener_connected = Gauge(
            "cache_listener_connected", "1 while the invalidation feed is connected.",
            registry=registry, multiprocess_mode="livemin",
        )
        self.cache_listener_reconnects = Counter(
            "cache_listener_reconnects_total",
            "Times the invalidation feed was lost (each clears the derived caches).",
            registry=registry,
        )

    def publish_settings(self, labels: Mapping[str, str]) -> Gauge:
        """Expose `target_settings_info{<labels>} 1` (from `settings.effective_settings`).

        A Gauge, not prometheus-client's `Info`: `Info` is refused in
        multiprocess mode. `multiprocess_mode="max"` drops the `pid` label and
        merges the workers (`all`/`liveall` would keep one series per worker,
        `sum` would say 2): every worker of a service reads the same
        environment, so N workers show exactly one series. Once per registry.
        """
        if self.settings_info is not None:
            raise RuntimeError("the settings are published once per registry")
        names = list(labels)
        self.settings_info = Gauge(
            SETTINGS_INFO,
            "The settings in force (value 1): profile, effective toggles, pool, cache, "
            "ElevenLabs and HTTP settings, version. Secrets and URLs are never labels.",
            names, registry=self.registry, multiprocess_mode="max",
        )
        self.settings_info.labels(*(labels[n] for n in names)).set(1)
        return self.settings_info

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """The exposition body, aggregated over workers in multiprocess mode: OpenMetrics
        (with exemplars) when `accept` asks for it, else the classic text format.
        Without `accept`, the `Accept` header of the `/metrics` request being served."""
        for hook in list(self.render_hooks):
            hook()
        registry = self.registry
        if multiprocess_dir():
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
        if wants_openmetrics(accept if accept is not None else _ACCEPT.get()):
            return openmetrics.generate_latest(registry), openmetrics.CONTENT_TYPE_LATEST
        return generate_latest(registry), CONTENT_TYPE_LATEST

    @staticmethod
    def retire_process() -> None:
        """At a worker's graceful shutdown in multiprocess mode, drop its `live*` gauge
        files, so a restarted or reloaded worker's last values do not linger in
        `livesum`/`liveall` series. Counters and histograms stay: they are history."""
        if multiprocess_dir():
            mark_process_dead(os.getpid())


class RequestMetricsMiddleware:
    """Times every HTTP request and labels it with the matched route template.

    A pure ASGI middleware (not BaseHTTPMiddleware) so it adds no task per
    request. The route template (`/api/v1/agents/{agent_id}`) is read from the
    scope after routing; unmatched paths share one label and unknown methods are
    `_OTHER`, to bound cardinality.
    Runs inside the tracing middleware, so a sampled request's server span is current
    when it is observed and becomes the observation's exemplar. For `/metrics` it
    notes the `Accept` header, which `ServiceMetrics.render` answers.
    """

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        token = None
        if scope.get("path") == "/metrics":
            accept = next((v for k, v in scope.get("headers") or () if k == b"accept"), b"")
            token = _ACCEPT.set(accept.decode("latin-1"))
        self.metrics.http_in_flight.inc()
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.http_in_flight.dec()
            self.metrics.worker_requests.inc()
            if token is not None:
                _ACCEPT.reset(token)
            route = scope.get("route")
            template = getattr(route, "path", None) or "<unmatched>"
            self.metrics.http_duration.labels(
                method_label(scope["method"]), template, str(status)
            ).observe(time.perf_counter() - start, trace_exemplar())
