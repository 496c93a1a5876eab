"""OpenTelemetry tracing of the service: built in the lifespan, passed explicitly, off by default.

`Tracing.start(settings)` runs in the lifespan (nothing is built at import
time). With `tracing.exporter="none"`, the default, it is `Tracing.off()`: no
provider, nothing instrumented, every component holds `tracer=None` and checks
it before any tracing work. Otherwise the process gets its own provider:
resource `service.name`, `service.version`, `voice.profile`, `voice.workers`,
`service.instance.id` and `process.pid` (the uvicorn worker); sampler
`ParentBased(TraceIdRatioBased(sampling))`, so a caller's `traceparent`
decides for its trace (the server span continues it) and the ratio decides
for new ones; exporter console, OTLP/HTTP, OTLP-JSON lines in a file
(`opentelemetry-exporter-otlp-json-file`, each line one `O_APPEND` write so
workers can share the file; `{pid}` in the path gives each its own) or a spool
that the harness turns into those lines after a run (`span_spool.py`: what a
traced harness run uses, because encoding OTLP in the service is its cost). A
`ServiceSpanProcessor` in front of the exporter names asyncpg spans after the
`Database` query that ran them (`db.query.name`) and strips query strings,
credential headers and SQL parameters from every span and event
(`span_redaction.py`).

The provider goes to the instrumentations explicitly, never globally: FastAPI
(`instrument_app`), asyncpg (it patches the driver process-wide, so one
traced app per process owns it) and the ElevenLabs `httpx.AsyncClient`
(`instrument_http`); `tracing.tracer` to the service's own spans, through
`Resources.open`. `shutdown()` undoes all of it and flushes the exporter, so
tests can build many apps. While on, a handler on the `target_service` logger
writes each record with the current `trace_id`/`span_id` (`TraceContextFilter`).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import socket
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from starlette.background import BackgroundTask

from target_service.span_redaction import SENSITIVE_HEADERS, ServiceSpanProcessor
from target_service.span_spool import SpoolSpanExporter, open_append, write_all
from target_service.trace_gate import (
    GatedAsyncPGInstrumentor,
    GatedTracer,
    GatedTracerProvider,
    gate_app,
)

if TYPE_CHECKING:  # imported where used: settings -> elevenlabs -> client -> this module
    from target_service.settings import Settings, TracingSettings

log = logging.getLogger(__name__)

SERVICE_NAME = "target_service"
LOGGER = "target_service"
ROOT = Context()
"""An empty context: a span started in it begins a trace of its own (background work)."""

_NO_SPAN = contextlib.nullcontext()


# ---- helpers the components use -----------------------------------------------------------

def maybe_span(tracer: trace.Tracer | None, name: str,
               attributes: Mapping[str, Any] | None = None, **kwargs: Any):
    """`tracer.start_as_current_span(...)`, or a shared no-op context (yielding None)."""
    if tracer is None:
        return _NO_SPAN
    return tracer.start_as_current_span(name, attributes=attributes, **kwargs)


def activate(span: trace.Span | None):
    """Make `span` current without ending it on exit (a no-op for None)."""
    if span is None:
        return _NO_SPAN
    return trace.use_span(span, end_on_exit=False, record_exception=False,
                          set_status_on_exception=False)


def current_link() -> trace.Link | None:
    """A link to the current span, for work it hands off to another trace."""
    ctx = trace.get_current_span().get_span_context()
    return trace.Link(ctx) if ctx.is_valid else None


def background_span(tracer: trace.Tracer, name: str, attributes: Mapping[str, Any],
                    link: trace.Link | None):
    """A span starting a trace of its own, linked to the span that asked for the work
    (jobs, cache refreshes: as children they would stretch a request's trace past its end)."""
    return tracer.start_as_current_span(name, context=ROOT, attributes=attributes,
                                        links=(link,) if link is not None else ())


def recording_span() -> trace.Span | None:
    """The current span if it records (a sampled request's), else None: the check to make
    before building attributes for it."""
    span = trace.get_current_span()
    return span if span.is_recording() else None


def lookup_event(span: trace.Span, cache: str, attributes: Mapping[str, Any]) -> None:
    """A cache lookup answered from memory, as the event `cache.lookup <cache>` on `span`
    (`recording_span()`). Such a lookup takes microseconds and has no child work: a span
    of its own cost more than the lookup (~40 µs to make, then to export, where an event
    is a few) and had nothing to break down. A lookup that misses, and so waits for a
    load, is a span (`MemoryCache.get_or_load`)."""
    span.add_event(f"cache.lookup {cache}", attributes)


def cache_attributes(cache: str, key: object) -> dict[str, Any]:
    """`cache.name` and the key's namespace; never the key (it holds ids or a key hash)."""
    attrs: dict[str, Any] = {"cache.name": cache}
    if isinstance(key, tuple) and key and isinstance(key[0], str):
        attrs["cache.namespace"] = key[0]
    return attrs


# ---- exporters --------------------------------------------------------------------------------

class _AppendLines(io.TextIOBase):
    """A text stream whose every `write` is one `os.write` on an `O_APPEND` descriptor: the
    exporter writes a whole line per call, so workers appending to one file never mix lines."""

    def __init__(self, path: Path) -> None:
        self._fd = open_append(path)

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        write_all(self._fd, text.encode("utf-8"))
        return len(text)

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()


def jsonl_path(settings: TracingSettings) -> Path:
    """The file this process appends spans to (`{pid}` replaced by its process id)."""
    return Path(settings.jsonl_path.replace("{pid}", str(os.getpid())))


def spool_path(settings: TracingSettings) -> Path:
    """The spool this process appends spans to (`{pid}` replaced by its process id)."""
    return Path(settings.spool_path.replace("{pid}", str(os.getpid())))


def jsonl_exporter(path: Path) -> SpanExporter:
    """OTLP-JSON lines (one `{"resourceSpans": [...]}` object per exported batch)."""
    from opentelemetry.exporter.otlp.json.file import FileSpanExporter

    class JsonlSpanExporter(FileSpanExporter):
        def __init__(self) -> None:
            self._lines = _AppendLines(path)
            super().__init__(stream=self._lines)

        def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
            super().shutdown(timeout_millis, **kwargs)
            self._lines.close()

    return JsonlSpanExporter()


def build_exporter(settings: TracingSettings) -> SpanExporter:
    if settings.exporter == "console":
        return ConsoleSpanExporter()
    if settings.exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        return OTLPSpanExporter(endpoint=settings.otlp_endpoint)
    if settings.exporter == "jsonl":
        return jsonl_exporter(jsonl_path(settings))
    if settings.exporter == "spool":
        return SpoolSpanExporter(spool_path(settings))
    raise ValueError(f"no exporter for tracing.exporter={settings.exporter!r}")


def service_resource(settings: Settings) -> Resource:
    from target_service.settings import service_version
    pid = os.getpid()
    return Resource.create({
        "service.name": SERVICE_NAME, "service.version": service_version(),
        "service.instance.id": f"{socket.gethostname()}:{pid}", "process.pid": pid,
        "voice.profile": settings.profile, "voice.workers": settings.workers})


# ---- logs -------------------------------------------------------------------------------------

class TraceContextFilter(logging.Filter):
    """Puts `trace_id` and `span_id` (hex, or "" outside a span) on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        ctx = trace.get_current_span().get_span_context()
        record.trace_id = format(ctx.trace_id, "032x") if ctx.is_valid else ""
        record.span_id = format(ctx.span_id, "016x") if ctx.is_valid else ""
        return True


class TraceFormatter(logging.Formatter):
    """`time level logger [trace_id=... span_id=...]: message`, ids only inside a span."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # logging's name
        trace_id = getattr(record, "trace_id", "")
        ids = f" trace_id={trace_id} span_id={record.span_id}" if trace_id else ""
        return f"{record.asctime} {record.levelname} {record.name}{ids}: {record.message}"

    def usesTime(self) -> bool:
        return True


# ---- the process's tracing --------------------------------------------------------------------

class Tracing:
    """A process's provider and what it instrumented; `Tracing.off()` has neither."""

    def __init__(self, provider: TracerProvider | None = None,
                 settings: TracingSettings | None = None) -> None:
        from target_service.settings import TracingSettings, service_version
        self.provider = provider
        self.tracer: trace.Tracer | None = (  # no span where the sampler would drop it
            GatedTracer(provider.get_tracer(SERVICE_NAME, service_version()))
            if provider else None)
        self.settings = settings or TracingSettings()
        self.log_handler: logging.Handler | None = None
        self._app: Any = None
        self._clients: list[Any] = []
        self._owns_asyncpg = False

    @classmethod
    def off(cls) -> Tracing:
        return cls()

    @property
    def enabled(self) -> bool:
        return self.provider is not None

    @classmethod
    def start(cls, settings: Settings, exporter: SpanExporter | None = None) -> Tracing:
        """The provider the settings ask for; `exporter` (tests) is exported synchronously."""
        config = settings.tracing
        if exporter is None and config.exporter == "none":
            return cls.off()
        provider = TracerProvider(resource=service_resource(settings),
                                  sampler=ParentBased(TraceIdRatioBased(config.sampling)),
                                  shutdown_on_exit=False)  # the lifespan shuts it down
        export = (SimpleSpanProcessor(exporter) if exporter is not None
                  else BatchSpanProcessor(build_exporter(config)))
        provider.add_span_processor(ServiceSpanProcessor(export))
        tracing = cls(provider, config)
        tracing._instrument_asyncpg()
        tracing._install_log_handler()
        return tracing

    def instrument_app(self, app: Any) -> None:
        """Server spans for `app` (route templates as names, no headers or query strings)."""
        if self.provider is None:
            return
        patched = hasattr(BackgroundTask, "_otel_original_call")
        FastAPIInstrumentor.instrument_app(
            app, tracer_provider=self.provider, meter_provider=NoOpMeterProvider(),
            excluded_urls=self.settings.excluded_urls,
            http_capture_headers_sanitize_fields=list(SENSITIVE_HEADERS),
            exclude_spans=["receive", "send"])
        gate_app(app)  # unsampled callers skip the middleware (trace_gate.py)
        if not patched and hasattr(BackgroundTask, "_otel_original_call"):
            # instrument_app also patches Starlette's BackgroundTask class, bound to this
            # provider: a process-wide override the service (which runs none) does not want
            BackgroundTask.__call__ = BackgroundTask._otel_original_call
            del BackgroundTask._otel_original_call
        if app.middleware_stack is not None:  # under uvicorn the lifespan already built it
            app.middleware_stack = app.build_middleware_stack()
        self._app = app

    def instrument_http(self, client: Any) -> None:
        """HTTP client spans (and `traceparent` propagation) for one `httpx.AsyncClient`."""
        if self.provider is None or client is None:
            return
        HTTPXClientInstrumentor.instrument_client(client,
                                                  tracer_provider=GatedTracerProvider(
                                                      self.provider),
                                                  meter_provider=NoOpMeterProvider())
        self._clients.append(client)

    def _instrument_asyncpg(self) -> None:
        instrumentor = GatedAsyncPGInstrumentor(capture_parameters=False)
        if instrumentor.is_instrumented_by_opentelemetry:
            log.warning("asyncpg is already traced by another app in this process; "
                        "this app's queries are not traced")
            return
        instrumentor.instrument(tracer_provider=GatedTracerProvider(self.provider))
        self._owns_asyncpg = True

    def _install_log_handler(self) -> None:
        handler = logging.StreamHandler(sys.stderr)
        handler.addFilter(TraceContextFilter())
        handler.setFormatter(TraceFormatter())
        logging.getLogger(LOGGER).addHandler(handler)
        self.log_handler = handler

    async def shutdown(self) -> None:
        """Undo every instrumentation, then flush and close the exporter."""
        if self.provider is None:
            return
        if self._app is not None:
            FastAPIInstrumentor.uninstrument_app(self._app)
            self._app = None
        if self._clients:
            for client in self._clients:
                HTTPXClientInstrumentor.uninstrument_client(client)
            self._clients.clear()
        if self._owns_asyncpg:
            GatedAsyncPGInstrumentor().uninstrument()
            self._owns_asyncpg = False
        if self.log_handler is not None:
            logging.getLogger(LOGGER).removeHandler(self.log_handler)
            self.log_handler = None
        await asyncio.to_thread(self.provider.shutdown)  # an exporter may block on the network
