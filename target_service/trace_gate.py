"""Skip the tracing work for requests whose trace is already decided "not sampled".

The service samples with `ParentBased(TraceIdRatioBased(p))`: a request whose
caller sent `traceparent` with the sampled flag clear is dropped, and so is
every span under it. The SDK still does most of the work for such a request:
the ASGI middleware parses the scope, builds its attributes and starts a
non-recording span; asyncpg's instrumentation strips comments from each SQL
text and builds its attributes before asking the sampler; the service's own
spans each go through the sampler and attach a context. Measured on the
`mixed` scenario (docs/tracing-notes.md), that fixed cost was most of tracing's
overhead at sampling 0.1: about as much CPU per request at 0.0 as at 0.1.

This module takes the decision first, exactly as the sampler would, and
bypasses the instrumentation when the answer is already known:

* `UnsampledBypass`, the outermost ASGI app when tracing is on: a request with
  a valid `traceparent` whose sampled flag is clear runs the uninstrumented
  middleware stack, with the caller's span context current (a
  `NonRecordingSpan`, as the SDK would make), so log lines still carry the
  caller's trace id. Anything else (no header, a malformed one, a sampled
  one) takes the instrumented stack and the sampler decides as before.
* `parent_dropped()`: true when the parent span is a valid, unsampled one; the
  service's own tracer (`GatedTracer`), the httpx and asyncpg instrumentations'
  (through `GatedTracerProvider`) and the asyncpg instrumentation itself
  (`GatedAsyncPGInstrumentor`, which also skips building its attributes) then
  start nothing, which is what ParentBased would have produced (a span nobody
  records). Background work starts from an empty context, so its root spans
  still meet the ratio sampler.

The same tracers record an exception that escapes a sampled span as an event
without its traceback (`record_error`): formatting it was the costliest thing a
sampled request did against a failing upstream.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from types import TracebackType
from typing import Any

from cachetools import LRUCache
from opentelemetry import context, trace
from opentelemetry.context import Context
from opentelemetry.instrumentation.asgi import (
    OpenTelemetryMiddleware,
    asgi_getter,
    asgi_setter,
    collect_custom_headers_attributes,
    collect_request_attributes,
    get_host_port_url_tuple,
)
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.instrumentation.propagators import get_global_response_propagator
from opentelemetry.instrumentation.utils import (
    _start_internal_or_server_span,
    is_http_instrumentation_enabled,
)
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from opentelemetry.util.http import normalise_request_header_name
from starlette.types import ASGIApp, Receive, Scope, Send

_HEX = frozenset(b"0123456789abcdef")


def unsampled_parent(headers: Any) -> SpanContext | None:
    """The remote span context of a valid W3C `traceparent` whose sampled flag is clear,
    else None (no header, a malformed one, or a sampled one: the sampler decides)."""
    value = None
    for name, raw in headers or ():
        if name == b"traceparent":
            if value is not None:  # two headers: malformed, let the propagator judge
                return None
            value = raw
    if value is None or len(value) != 55:
        return None
    value = value.strip().lower()
    version, trace_hex, span_hex, flags = value[:2], value[3:35], value[36:52], value[53:55]
    if (value[2:3] != b"-" or value[35:36] != b"-" or value[52:53] != b"-"
            or version == b"ff" or not _HEX.issuperset(value.replace(b"-", b""))):
        return None
    trace_id, span_id, flag_bits = int(trace_hex, 16), int(span_hex, 16), int(flags, 16)
    if trace_id == 0 or span_id == 0 or flag_bits & TraceFlags.SAMPLED:
        return None
    return SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(flag_bits))


def parent_dropped(parent: Context | None = None) -> bool:
    """Whether a span started now (under `parent`, default the current context) would be
    dropped by ParentBased: its parent span is valid and not sampled."""
    ctx = trace.get_current_span(parent).get_span_context()
    return ctx.is_valid and not ctx.trace_flags.sampled


def record_error(span: trace.Span, exc: BaseException) -> None:
    """The `exception` event of OpenTelemetry's conventions, with the type and message
    and without `exception.stacktrace` (an optional attribute).

    The SDK's `record_exception` formats the whole traceback, and Python 3.11 parses
    each frame's source line for its caret anchors: a profile of sampled requests
    against a failing upstream had a third of their tracing cost in it, for failures
    the service expects (an open breaker, a refused connection) and already counts.
    Where a failure is a bug, the service logs it with its traceback, and the log line
    carries the same trace id."""
    if not span.is_recording():
        return
    cls = type(exc)
    module = cls.__module__
    span.add_event("exception", {
        "exception.type": cls.__qualname__ if module in (None, "builtins")
        else f"{module}.{cls.__qualname__}",
        "exception.message": str(exc),
        "exception.escaped": "True"})


class _RecordErrors:
    """`start_as_current_span`'s context manager, recording an escaping exception with
    `record_error` instead of the SDK's traceback (the SDK still sets the status)."""

    __slots__ = ("_manager", "_span")

    def __init__(self, manager: Any) -> None:
        self._manager = manager
        self._span: trace.Span | None = None

    def __enter__(self) -> trace.Span:
        self._span = self._manager.__enter__()
        return self._span

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> Any:
        if isinstance(exc, Exception) and self._span is not None:
            record_error(self._span, exc)  # before the SDK ends the span
        return self._manager.__exit__(kind, exc, tb)


_AS_CURRENT_ARGS = ("kind", "attributes", "links", "start_time", "record_exception",
                    "set_status_on_exception", "end_on_exit")
"""`Tracer.start_as_current_span`'s parameters after `name` and `context`, in order."""


class GatedTracer(trace.Tracer):
    """A tracer that starts no span where ParentBased would drop it, and records the
    exceptions that escape its spans without their tracebacks (`record_error`).

    Where the span would be dropped it hands back the parent itself (a non-recording
    span: setting attributes or ending it does nothing), so the caller's code is the
    same whether or not the request is sampled, and no sampler call, id or context
    attach is spent on it.
    """

    def __init__(self, tracer: trace.Tracer) -> None:
        self._tracer = tracer

    def start_span(self, name: str, context: Context | None = None,
                   *args: Any, **kwargs: Any) -> trace.Span:
        if parent_dropped(context):
            return trace.get_current_span(context)
        return self._tracer.start_span(name, context, *args, **kwargs)

    def start_as_current_span(self, name: str, context: Context | None = None,
                              *args: Any, **kwargs: Any) -> Any:
        if parent_dropped(context):
            return contextlib.nullcontext(trace.get_current_span(context))
        kwargs.update(zip(_AS_CURRENT_ARGS, args))
        if not kwargs.get("record_exception", True):  # the caller wants none recorded
            return self._tracer.start_as_current_span(name, context, **kwargs)
        kwargs["record_exception"] = False
        return _RecordErrors(self._tracer.start_as_current_span(name, context, **kwargs))


class GatedTracerProvider(trace.TracerProvider):
    """Gives instrumentations `GatedTracer`s over a real provider's tracers."""

    def __init__(self, provider: trace.TracerProvider) -> None:
        self._provider = provider

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        return GatedTracer(self._provider.get_tracer(*args, **kwargs))


class UnsampledBypass:
    """Sends unsampled requests around the OpenTelemetry middleware (see the module)."""

    def __init__(self, traced: ASGIApp, untraced: ASGIApp) -> None:
        self.traced = traced
        self.untraced = untraced

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            parent = unsampled_parent(scope.get("headers"))
            if parent is not None:
                token = context.attach(trace.set_span_in_context(NonRecordingSpan(parent)))
                try:
                    await self.untraced(scope, receive, send)
                finally:
                    context.detach(token)
                return
        await self.traced(scope, receive, send)


class SpanDetailsCache:
    """The FastAPI instrumentation's span name and `http.route` for a request, remembered
    per method and path.

    Its `_get_default_span_details` finds the route by matching the scope against every
    route of the app in turn (Starlette's `matches`, which builds a child scope each
    time), for each sampled request before it starts the server span: about a quarter
    of what the server span cost (docs/tracing-notes.md). The answer depends only on
    the scope's type, method, root path and path (the service routes on nothing else),
    so a bounded LRU of them answers a repeated path without matching.
    """

    def __init__(self, details: Callable[[Scope], tuple[str, dict[str, Any]]],
                 size: int = 4096) -> None:
        self._details = details
        self._cache: LRUCache = LRUCache(size)

    def __call__(self, scope: Scope) -> tuple[str, dict[str, Any]]:
        key = (scope["type"], scope.get("method"), scope.get("root_path", ""), scope["path"])
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = self._details(scope)
        name, attributes = found
        return name, dict(attributes)  # the caller's to change


class ServerSpan:
    """The OpenTelemetry ASGI middleware's server span, without the work the service
    throws away.

    `FastAPIInstrumentor` configures an `OpenTelemetryMiddleware` (tracer, route
    lookup, excluded URLs, hooks); this runs a request through that configuration
    with the instrumentation's own functions (`collect_request_attributes`,
    `_start_internal_or_server_span`, its `_set_server_span`), so the span, its name, its
    attributes, its status and its parent are the ones the middleware makes. Left
    out: the HTTP metrics (the service gives the instrumentation a no-op meter and
    exports its own), whose attribute sets the middleware builds on every request
    anyway; setting every request attribute a second time after the span started
    with them; and the per-message `send` span bookkeeping (the service excludes
    those spans). In one process that was about 30% of a sampled request's server
    span (docs/tracing-notes.md). `gate_app` uses it only where the middleware is
    configured as the service configures it (`applies`); anywhere else the
    middleware runs as it is.
    """

    def __init__(self, otel: OpenTelemetryMiddleware) -> None:
        self.otel = otel

    @staticmethod
    def applies(otel: OpenTelemetryMiddleware) -> bool:
        """Whether `otel` does nothing this class leaves out: no receive or send spans,
        no client hooks, and the instrumentation's private parts it calls still there."""
        return (getattr(otel, "exclude_receive_span", False)
                and getattr(otel, "exclude_send_span", False)
                and getattr(otel, "client_request_hook", None) is None
                and getattr(otel, "client_response_hook", None) is None
                and hasattr(otel, "_sem_conv_opt_in_mode")
                and callable(getattr(otel, "_set_server_span", None)))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        otel = self.otel
        if scope["type"] != "http" or not is_http_instrumentation_enabled():
            return await otel(scope, receive, send)  # as the middleware itself would
        if otel.excluded_urls and otel.excluded_urls.url_disabled(
                get_host_port_url_tuple(scope)[2]):
            return await otel.app(scope, receive, send)
        mode = otel._sem_conv_opt_in_mode  # the middleware's own setting
        name, extra = otel.default_span_details(scope)
        attributes = collect_request_attributes(scope, mode)
        attributes.update(extra)
        span, token = _start_internal_or_server_span(
            tracer=otel.tracer, span_name=name, start_time=None, context_carrier=scope,
            context_getter=asgi_getter, attributes=attributes)
        propagator = get_global_response_propagator()

        async def traced_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                # the status code, and the response headers asked for (the middleware's own)
                otel._set_server_span(span, message, message["status"], None)
                if propagator:
                    propagator.inject(message, context=trace.set_span_in_context(
                        span, context.Context()), setter=asgi_setter)
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                span.end()  # where the middleware ends it: the response is complete

        try:
            # an unhandled error: the FastAPI instrumentation's own middleware, inside
            # this one, has recorded it and set the status before the 500 went out
            with trace.use_span(span, end_on_exit=False, record_exception=False,
                                set_status_on_exception=False):
                if otel.http_capture_headers_server_request and span.is_recording() \
                        and span.kind == trace.SpanKind.SERVER:
                    span.set_attributes(collect_custom_headers_attributes(
                        scope, otel.http_capture_headers_sanitize_fields,
                        otel.http_capture_headers_server_request,
                        normalise_request_header_name))
                if callable(otel.server_request_hook):
                    otel.server_request_hook(span, scope)
                await otel.app(scope, receive, traced_send)
        finally:
            if token:
                context.detach(token)
            if span.is_recording():  # no complete response was sent
                span.end()


def gate_app(app: Any) -> None:
    """Put `UnsampledBypass` in front of an instrumented FastAPI app's middleware stack,
    a `SpanDetailsCache` in its OpenTelemetry middleware and `ServerSpan` around it.

    `FastAPIInstrumentor.instrument_app` replaced `app.build_middleware_stack` and kept
    the original as `app._original_build_middleware_stack`; both stacks share the
    app's router and middleware classes. The instrumented stack is a
    `ServerErrorMiddleware` around the `OpenTelemetryMiddleware`, whose
    `default_span_details` (a constructor argument instrument_app does not pass on) is
    the route lookup; `ServerSpan` then runs that middleware's request path.
    `uninstrument_app` restores the original stack, which removes all three.
    """
    instrumented = app.build_middleware_stack
    original = app._original_build_middleware_stack

    def build_middleware_stack() -> ASGIApp:
        traced = instrumented()
        otel = getattr(traced, "app", None)
        if isinstance(otel, OpenTelemetryMiddleware):
            otel.default_span_details = SpanDetailsCache(otel.default_span_details)
            if ServerSpan.applies(otel):
                traced.app = ServerSpan(otel)
        return UnsampledBypass(traced=traced, untraced=original())

    app.build_middleware_stack = build_middleware_stack


class GatedAsyncPGInstrumentor(AsyncPGInstrumentor):
    """asyncpg's instrumentation, skipped entirely where the span would be dropped."""

    _instance = None  # BaseInstrumentor is a per-class singleton: not the parent's instance

    async def _do_execute(self, func, instance, args, kwargs):
        if parent_dropped():
            return await func(*args, **kwargs)
        return await super()._do_execute(func, instance, args, kwargs)

    async def _do_cursor_execute(self, func, instance, args, kwargs):
        if parent_dropped():
            return await func(*args, **kwargs)
        return await super()._do_cursor_execute(func, instance, args, kwargs)

    async def _do_prepared_execute(self, func, instance, args, kwargs):
        if parent_dropped():
            return await func(*args, **kwargs)
        return await super()._do_prepared_execute(func, instance, args, kwargs)
