"""The sampled-flag gate (`target_service/trace_gate.py`): which `traceparent` headers it
takes as "not sampled", and that the gated tracer starts nothing where ParentBased would
drop the span and everything it would start elsewhere."""

from __future__ import annotations

import pytest
from opentelemetry import context, trace
from opentelemetry.instrumentation.utils import suppress_http_instrumentation
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from target_service.trace_gate import (
    GatedTracer,
    SpanDetailsCache,
    gate_app,
    parent_dropped,
    unsampled_parent,
)

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"


def headers(*values: str) -> list[tuple[bytes, bytes]]:
    return [(b"host", b"target"), *((b"traceparent", v.encode()) for v in values)]


def test_an_unsampled_traceparent_gives_the_callers_context():
    ctx = unsampled_parent(headers(f"00-{TRACE}-{SPAN}-00"))
    assert ctx is not None and ctx.is_remote and ctx.is_valid
    assert (format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")) == (TRACE, SPAN)
    assert not ctx.trace_flags.sampled
    assert unsampled_parent(headers(f"00-{TRACE.upper()}-{SPAN}-02")) is not None  # other bits


@pytest.mark.parametrize("value", [
    f"00-{TRACE}-{SPAN}-01",                 # sampled: the SDK starts the span
    f"00-{TRACE}-{SPAN}-03",                 # sampled among other flags
    f"ff-{TRACE}-{SPAN}-00",                 # version ff is invalid
    f"00-{'0' * 32}-{SPAN}-00",              # all-zero trace id
    f"00-{TRACE}-{'0' * 16}-00",             # all-zero span id
    f"00-{TRACE[:-1]}g-{SPAN}-00",           # not hex
    f"00-{TRACE}-{SPAN}-00-extra",           # a future version's longer form
    f"00_{TRACE}_{SPAN}_00",                 # wrong separators
    "garbage",
])
def test_anything_else_is_left_to_the_sampler(value):
    assert unsampled_parent(headers(value)) is None


def test_no_header_or_two_headers_are_left_to_the_sampler():
    assert unsampled_parent(headers()) is None
    assert unsampled_parent(None) is None
    assert unsampled_parent(headers(f"00-{TRACE}-{SPAN}-00", f"00-{TRACE}-{SPAN}-00")) is None


@pytest.fixture
def tracer_and_spans():
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ParentBased(TraceIdRatioBased(1.0)))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield GatedTracer(provider.get_tracer("test")), exporter
    provider.shutdown()


def under(sampled: bool):
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
    span = NonRecordingSpan(SpanContext(int(TRACE, 16), int(SPAN, 16), True, flags))
    return context.attach(trace.set_span_in_context(span))


def test_under_an_unsampled_parent_the_gated_tracer_starts_nothing(tracer_and_spans):
    tracer, exporter = tracer_and_spans
    token = under(sampled=False)
    try:
        assert parent_dropped()
        parent = trace.get_current_span()
        with tracer.start_as_current_span("cache.lookup") as span:
            assert span is parent and not span.is_recording()
            span.set_attribute("cache.name", "x")  # harmless on a non-recording span
        started = tracer.start_span("pool.acquire")
        assert started is parent
        started.end()
    finally:
        context.detach(token)
    assert exporter.get_finished_spans() == ()


def test_under_a_sampled_parent_or_at_the_root_it_traces_as_the_sdk(tracer_and_spans):
    tracer, exporter = tracer_and_spans
    token = under(sampled=True)
    try:
        assert not parent_dropped()
        with tracer.start_as_current_span("cache.lookup") as span:
            assert span.is_recording()
    finally:
        context.detach(token)
    with tracer.start_as_current_span("job kpi_refresh"):  # no parent: the ratio decides
        pass
    token = under(sampled=False)
    try:  # an explicit root context is not the current unsampled one (background work)
        with tracer.start_as_current_span("cache.refresh", context=context.Context()) as span:
            assert span.is_recording()
    finally:
        context.detach(token)
    spans = exporter.get_finished_spans()
    assert [s.name for s in spans] == ["cache.lookup", "job kpi_refresh", "cache.refresh"]
    assert format(spans[0].context.trace_id, "032x") == TRACE
    assert spans[2].parent is None


def test_an_escaping_exception_is_an_event_without_its_traceback(tracer_and_spans):
    """The SDK's record_exception formats the traceback (costly: see `record_error`); the
    gated tracer records the type and message, and the SDK still sets the status."""
    from target_service.elevenlabs.errors import CircuitOpen

    tracer, exporter = tracer_and_spans
    with pytest.raises(CircuitOpen), tracer.start_as_current_span("elevenlabs.get_agent"):
        raise CircuitOpen("circuit breaker open, upstream not called", agent_id="a1")
    # positional arguments reach the SDK in their places
    job_span = tracer.start_as_current_span("job x", None, trace.SpanKind.INTERNAL,
                                            {"job.name": "x"})
    with pytest.raises(KeyError), job_span:
        raise KeyError("k")
    # a caller that asks for no record gets none
    with pytest.raises(ValueError), tracer.start_as_current_span("quiet",
                                                                 record_exception=False):
        raise ValueError("v")
    breaker, job, quiet = exporter.get_finished_spans()
    (event,) = breaker.events
    assert event.name == "exception"
    assert dict(event.attributes) == {
        "exception.type": "target_service.elevenlabs.errors.CircuitOpen",
        "exception.message": "circuit breaker open, upstream not called agent_id=a1",
        "exception.escaped": "True"}
    assert breaker.status.status_code is trace.StatusCode.ERROR
    assert breaker.end_time >= event.timestamp
    assert job.attributes["job.name"] == "x" and job.kind is trace.SpanKind.INTERNAL
    assert [dict(e.attributes)["exception.type"] for e in job.events] == ["KeyError"]
    assert not any("exception.stacktrace" in e.attributes for s in (breaker, job)
                   for e in s.events)
    assert quiet.events == () and quiet.status.status_code is trace.StatusCode.ERROR


# ---- the route lookup, remembered --------------------------------------------------------------

@pytest.fixture
def instrumented_app():
    """The routes below instrumented as `Tracing.instrument_app` does it, sampling all."""
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ParentBased(TraceIdRatioBased(1.0)))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = _app_with_routes(provider, gated=True)
    yield app, exporter
    FastAPIInstrumentor.uninstrument_app(app)
    provider.shutdown()


async def test_span_names_come_from_the_route_and_each_path_is_matched_once(instrumented_app):
    import httpx

    app, exporter = instrumented_app
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://t") as client:
        assert (await client.get("/items/1")).status_code == 200  # builds the stack
        cache = app.middleware_stack.traced.app.otel.default_span_details
        assert isinstance(cache, SpanDetailsCache)
        looked_up: list[str] = []
        inner = cache._details

        def counting(scope):
            looked_up.append(f"{scope['method']} {scope['path']}")
            return inner(scope)

        cache._details = counting
        for path in ("/items/2", "/items/2", "/items/1", "/items/2"):
            assert (await client.get(path)).status_code == 200
        assert (await client.post("/items")).status_code == 201
        assert (await client.get("/nowhere")).status_code == 404
        assert (await client.get("/items")).status_code == 405  # the route, another method
        assert (await client.get("/nowhere")).status_code == 404

    # /items/1 was remembered from the first request; each other path was matched once
    assert looked_up == ["GET /items/2", "POST /items", "GET /nowhere", "GET /items"]
    servers = [s for s in exporter.get_finished_spans() if s.kind == trace.SpanKind.SERVER]
    names = [(s.name, s.attributes.get("http.route")) for s in servers]
    assert names == [("GET /items/{item_id}", "/items/{item_id}")] * 5 + [
        ("POST /items", "/items"), ("GET", None), ("GET /items", "/items"), ("GET", None)]
    assert [s.attributes["http.status_code"] for s in servers][-4:] == [201, 404, 405, 404]


def _app_with_routes(provider, gated: bool, exclude_spans=("receive", "send")):
    """A small FastAPI app with one route of each kind the server span must handle."""
    from fastapi import FastAPI
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.metrics import NoOpMeterProvider

    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict:
        return {"id": item_id}

    @app.post("/items", status_code=201)
    async def create() -> dict:
        return {}

    @app.get("/boom")
    async def boom() -> dict:
        raise RuntimeError("exploded")

    @app.get("/stream")
    async def stream():
        from fastapi.responses import StreamingResponse

        async def chunks():
            yield b"one,"
            yield b"two"
        return StreamingResponse(chunks())

    @app.get("/later")
    async def later():
        from fastapi.responses import JSONResponse
        from starlette.background import BackgroundTask

        def fail() -> None:
            raise RuntimeError("after the response")
        return JSONResponse({}, background=BackgroundTask(fail))

    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider,
                                       meter_provider=NoOpMeterProvider(),
                                       excluded_urls="/healthz",
                                       http_capture_headers_server_request=["x-.*"],
                                       http_capture_headers_server_response=["content-type"],
                                       http_capture_headers_sanitize_fields=["x-key"],
                                       exclude_spans=list(exclude_spans))
    if gated:
        gate_app(app)
    return app


async def test_the_server_span_is_the_one_the_instrumentation_makes():
    """`ServerSpan` runs the instrumentation's configuration leaner: for the same requests
    (a sampled caller, no caller, a query string, a 201, a 404, a 422, an unhandled
    error, an excluded URL, a streamed body, a background task failing after the
    response, instrumentation suppressed) it makes the same spans as
    `OpenTelemetryMiddleware`, attribute for attribute, with the same kind, parent,
    status and events."""
    import httpx
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    sampled = {"traceparent": f"00-{TRACE}-{SPAN}-01", "x-key": "k", "x-other": "o"}
    requests = [("GET", "/items/7?secret=1", sampled), ("GET", "/items/8", {}),
                ("POST", "/items", sampled), ("GET", "/nowhere", {}),
                ("GET", "/items/x", sampled), ("GET", "/boom", sampled),
                ("GET", "/healthz", {}), ("GET", "/stream", sampled),
                ("GET", "/later", sampled)]
    seen = []
    for gated in (False, True):
        exporter = InMemorySpanExporter()
        provider = TracerProvider(sampler=ParentBased(TraceIdRatioBased(1.0)))
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        app = _app_with_routes(provider, gated)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            statuses = [(await client.request(m, p, headers=h)).status_code
                        for m, p, h in requests]
            with suppress_http_instrumentation():
                assert (await client.get("/items/9", headers=sampled)).status_code == 200
        assert statuses == [200, 200, 201, 404, 422, 500, 404, 200, 200]
        if gated:
            assert type(app.middleware_stack.traced.app).__name__ == "ServerSpan"
        FastAPIInstrumentor.uninstrument_app(app)
        provider.shutdown()
        spans = exporter.get_finished_spans()
        seen.append([(s.name, s.kind, dict(s.attributes), s.status.status_code,
                      s.parent.span_id if s.parent else None,
                      format(s.context.trace_id, "032x") == TRACE,
                      [(e.name, dict(e.attributes)) for e in s.events])
                     for s in spans if s.kind == trace.SpanKind.SERVER])
    plain, lean = seen
    assert len(plain) == 8  # /healthz excluded, the suppressed request untraced
    assert lean == plain
    assert [s[5] for s in lean] == [True, False, True, False, True, True, True, True]
    boom, _, after = lean[-3:]
    assert boom[3] == trace.StatusCode.ERROR and [e[0] for e in boom[6]] == ["exception"]
    assert after[3] == trace.StatusCode.UNSET and after[6] == []  # ended with its response
    first = lean[0][2]  # the headers asked for, sanitized as asked
    assert first["http.request.header.x_key"] == ("[REDACTED]",)
    assert first["http.request.header.x_other"] == ("o",)
    assert first["http.response.header.content_type"] == ("application/json",)


def test_the_middleware_runs_as_it_is_where_it_would_make_more_spans():
    """With the receive and send spans wanted, `ServerSpan` (which makes neither) stays out."""
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    provider = TracerProvider()
    app = _app_with_routes(provider, gated=True, exclude_spans=())
    stack = app.build_middleware_stack()
    assert isinstance(stack.traced.app, OpenTelemetryMiddleware)
    FastAPIInstrumentor.uninstrument_app(app)
    app = _app_with_routes(provider, gated=True)
    assert type(app.build_middleware_stack().traced.app).__name__ == "ServerSpan"
    FastAPIInstrumentor.uninstrument_app(app)


def test_the_remembered_details_are_bounded_and_a_copy():
    calls = []

    def details(scope):
        calls.append(scope["path"])
        return f"GET {scope['path']}", {"http.route": scope["path"]}

    cache = SpanDetailsCache(details, size=2)
    scope = {"type": "http", "method": "GET", "path": "/a"}
    _, attrs = cache(scope)
    attrs["changed"] = True  # the middleware adds to what it is given
    assert cache(scope) == ("GET /a", {"http.route": "/a"})
    cache({**scope, "path": "/b"})
    cache({**scope, "path": "/c"})  # evicts /a, the least recently used
    cache(scope)
    assert calls == ["/a", "/b", "/c", "/a"]
    cache({**scope, "method": "POST"})  # another method is another key
    cache({**scope, "root_path": "/api"})  # so is another mount point
    assert calls[-2:] == ["/a", "/a"]
