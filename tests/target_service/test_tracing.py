"""OpenTelemetry tracing inside the service: one trace per request, the caller's trace
continued, upstream attempts, background work, sampling, exporters, and no secrets.

Apps run against the real PostgreSQL of the suite and, for the upstream tests,
the ElevenLabs stub process; spans are collected with the SDK's
`InMemorySpanExporter` passed to `create_app` (exported synchronously). No
assertion is about time.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import os
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from harness.analysis import traces as traces_summary
from harness.stubs.elevenlabs import StubProcess
from target_service.app import create_app
from target_service.cache.memory import MemoryCache
from target_service.elevenlabs.settings import ElevenLabsSettings
from target_service.encoding import DURATION_KEY
from target_service.settings import Settings
from target_service.span_redaction import ServiceSpanProcessor
from target_service.trace_gate import GatedAsyncPGInstrumentor as AsyncPGInstrumentor
from target_service.tracing import LOGGER, jsonl_exporter
from tests.cache.helpers import FakeClock, GatedLoader
from tests.conftest import auth, busiest_user, healthy_stub_for

OVERVIEW = "/api/v1/dashboard/overview"
XI_KEY = "xi_trace_test_key_7Hq2Zp9w"
CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    """Only what a test sets itself reaches Settings() and the instrumentations."""
    for name in list(os.environ):
        if name.startswith(("TARGET_", "OTEL_")):
            monkeypatch.delenv(name)


@pytest.fixture
def user(datasets) -> dict:
    return busiest_user(datasets.manifest)


@asynccontextmanager
async def traced_app(dsn: str, exporter: InMemorySpanExporter | None = None,
                     profile: str = "optimized",
                     **overrides: object) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """`tests.conftest.running_app` with a span exporter, and no start-up warming (so the
    first request misses the caches and its queries are in its trace)."""
    overrides.setdefault("elevenlabs_enabled", "elevenlabs" in overrides)
    overrides.setdefault("toggles", {"warm_cache": False})
    app = create_app(Settings(database_url=dsn, profile=profile, **overrides),
                     span_exporter=exporter)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://target") as client:
            yield app, client


@asynccontextmanager
async def served_like_uvicorn(app: FastAPI) -> AsyncIterator[None]:
    """Run the lifespan through the ASGI app, as uvicorn does: the middleware stack is
    built before the lifespan starts (so tracing must rebuild it)."""
    inbox: asyncio.Queue = asyncio.Queue()
    outbox: asyncio.Queue = asyncio.Queue()
    task = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}},
                                   inbox.get, outbox.put))
    await inbox.put({"type": "lifespan.startup"})
    assert (await outbox.get())["type"] == "lifespan.startup.complete"
    try:
        yield
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        assert (await outbox.get())["type"] == "lifespan.shutdown.complete"
        await task


def server_span(spans: list[ReadableSpan], route: str) -> ReadableSpan:
    found = [s for s in spans if s.kind is SpanKind.SERVER and s.name == f"GET {route}"]
    assert len(found) == 1, [s.name for s in spans]
    return found[0]


def trace_of(spans: list[ReadableSpan], root: ReadableSpan) -> list[ReadableSpan]:
    return [s for s in spans if s.context.trace_id == root.context.trace_id]


def assert_tree(spans: list[ReadableSpan], root: ReadableSpan) -> None:
    """Every span of the trace descends from `root` through spans of the same trace."""
    ids = {s.context.span_id for s in spans}
    for s in spans:
        if s is not root:
            assert s.parent is not None and s.parent.span_id in ids, s.name


def lookup_events(span: ReadableSpan) -> dict[str, str]:
    """The span's cache-lookup events: name -> `cache.result`."""
    return {e.name: e.attributes["cache.result"] for e in span.events
            if e.name.startswith("cache.lookup")}


def db_spans(spans: list[ReadableSpan]) -> list[ReadableSpan]:
    return [s for s in spans if s.attributes.get("db.system") == "postgresql"]


def traceparent(sampled: bool) -> dict[str, str]:
    return {"traceparent": f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-{'01' if sampled else '00'}"}


def strings_of(span: ReadableSpan) -> Iterator[str]:
    """Every string a span exports: name, attributes, events, links, resource."""
    yield span.name
    sources = [span.attributes, span.resource.attributes,
               *(e.attributes for e in span.events), *(link.attributes for link in span.links)]
    for event in span.events:
        yield event.name
    for attrs in sources:
        for key, value in (attrs or {}).items():
            yield key
            values = value if isinstance(value, (tuple, list)) else (value,)
            yield from (str(v) for v in values)


def tracer_and_exporter() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(ServiceSpanProcessor(SimpleSpanProcessor(exporter)))
    return provider, exporter


# ---- one request, one trace ---------------------------------------------------------------

async def test_a_request_is_one_trace_of_server_db_pool_and_cache_spans(shared_dbs, user):
    exporter = InMemorySpanExporter()
    async with traced_app(shared_dbs["optimized"], exporter) as (_, client):
        first = await client.get(OVERVIEW, headers=auth(user["api_key"]))
        assert first.status_code == 200 and first.headers["x-cache"] == "MISS"
        spans = list(exporter.get_finished_spans())
        exporter.clear()
        second = await client.get(OVERVIEW, headers=auth(user["api_key"]))
        assert second.headers["x-cache"] == "HIT"
        again = list(exporter.get_finished_spans())

    root = server_span(spans, OVERVIEW)
    assert root.parent is None
    mine = trace_of(spans, root)
    assert_tree(mine, root)
    names = {s.name for s in mine}
    assert {"cache.lookup dashboard", "cache.load dashboard"} <= names
    # a lookup that waits for a load is a span; one answered at once (the auth cache
    # is asked synchronously, hit or miss) an event on the span it happened in
    lookups = {s.name: s.attributes["cache.result"] for s in mine
               if s.name.startswith("cache.lookup")}
    assert lookups == {"cache.lookup dashboard": "miss"}
    assert lookup_events(root) == {"cache.lookup auth": "miss"}
    queries = {s.attributes.get("db.query.name") for s in db_spans(mine)}
    assert {"auth_user_by_key", "recent_activity"} <= queries
    for s in db_spans(mine):
        assert s.kind is SpanKind.CLIENT and "db.statement.parameters" not in s.attributes
    # the overview's queries ran inside the cache's load of it
    load = next(s for s in mine if s.name == "cache.load dashboard")
    parents = {s.context.span_id: s.parent.span_id for s in mine if s.parent}

    def under(span_id: int, ancestor: int) -> bool:
        while span_id in parents:
            span_id = parents[span_id]
            if span_id == ancestor:
                return True
        return False

    recent = next(s for s in db_spans(mine) if s.attributes.get("db.query.name")
                  == "recent_activity")
    assert under(recent.context.span_id, load.context.span_id)

    resource = root.resource.attributes
    assert resource["service.name"] == "target_service"
    assert resource["voice.profile"] == "optimized"
    assert resource["process.pid"] == os.getpid()
    assert resource["service.version"]

    # the second request is answered from memory: both lookups hit (events on the server
    # span, no span of their own), no query for the page
    hit_root = server_span(again, OVERVIEW)
    hit = trace_of(again, hit_root)
    assert [s.name for s in hit] == [hit_root.name]
    assert lookup_events(hit_root) == {"cache.lookup auth": "hit",
                                       "cache.lookup dashboard": "hit"}
    dashboard_hit = next(e for e in hit_root.events if e.name == "cache.lookup dashboard")
    assert dashboard_hit.attributes["cache.namespace"] == "overview"


async def test_a_pool_acquire_is_a_span_only_when_it_waited(shared_dbs, monkeypatch):
    """Served from an idle connection it is not traced (it takes less than its span
    would); one that found no idle connection is, from when it asked."""
    # a busy machine may take a millisecond for any acquire: only the idle test counts here
    monkeypatch.setattr("target_service.db.pool.ACQUIRE_SPAN_MIN_S", 3600.0)
    exporter = InMemorySpanExporter()
    async with traced_app(shared_dbs["optimized"], exporter,
                          pool={"min_size": 1, "max_size": 1},
                          toggles={"warm_cache": False, "kpi_refresher": False}) as (app, _):
        db = app.state.resources.db
        exporter.clear()
        async with db.acquire() as conn:
            await conn.fetchval("SELECT 1")
        assert [s.name for s in exporter.get_finished_spans()
                if s.name == "db.pool.acquire"] == []

        got = asyncio.Event()

        async def second() -> None:
            async with db.acquire():
                got.set()

        async with db.acquire():
            waiter = asyncio.create_task(second())
            for _ in range(50):  # until it is queued behind the held connection
                await asyncio.sleep(0.01)
            assert not got.is_set()
        await waiter
    (acquire,) = [s for s in exporter.get_finished_spans() if s.name == "db.pool.acquire"]
    assert acquire.attributes["db.pool.idle"] == 0
    assert acquire.attributes["db.pool.waiting"] == 1


async def test_the_lifespan_run_through_the_built_stack_still_traces(shared_dbs, user):
    """Under uvicorn the middleware stack exists before the lifespan instruments the app."""
    exporter = InMemorySpanExporter()
    app = create_app(Settings(database_url=shared_dbs["optimized"], elevenlabs_enabled=False),
                     span_exporter=exporter)
    async with served_like_uvicorn(app):
        assert app.middleware_stack is not None
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://target") as client:
            r = await client.get("/api/v1/activity", headers=auth(user["api_key"]))
            assert r.status_code == 200
    server_span(list(exporter.get_finished_spans()), "/api/v1/activity")


async def test_a_client_traceparent_is_continued(shared_dbs, user):
    exporter = InMemorySpanExporter()
    async with traced_app(shared_dbs["optimized"], exporter) as (_, client):
        r = await client.get("/api/v1/activity", headers={**auth(user["api_key"]),
                                                          **traceparent(sampled=True)})
        assert r.status_code == 200
    spans = list(exporter.get_finished_spans())
    root = server_span(spans, "/api/v1/activity")
    assert format(root.context.trace_id, "032x") == CLIENT_TRACE
    assert root.parent is not None and root.parent.is_remote
    assert format(root.parent.span_id, "016x") == CLIENT_SPAN
    mine = trace_of(spans, root)
    assert db_spans(mine) and len(mine) > 2
    assert_tree(mine, root)


async def test_encoding_the_response_is_a_timed_serialize_event_of_the_request(shared_dbs,
                                                                                user):
    exporter = InMemorySpanExporter()
    async with traced_app(shared_dbs["optimized"], exporter) as (_, client):
        r = await client.get("/api/v1/activity", headers={**auth(user["api_key"]),
                                                          **traceparent(sampled=True)})
        assert r.status_code == 200 and r.json()["items"]
    spans = list(exporter.get_finished_spans())
    root = server_span(spans, "/api/v1/activity")
    mine = trace_of(spans, root)
    assert not [s for s in mine if s.name.startswith("serialize")]  # an event, not a span
    encoded = [e for s in mine for e in s.events if e.name == "serialize ActivityPage"]
    assert len(encoded) == 1
    assert encoded[0] in root.events  # activity is not cached: encoded in the handler
    duration = encoded[0].attributes[DURATION_KEY]
    assert isinstance(duration, int) and 0 < duration < root.end_time - root.start_time
    assert root.start_time < encoded[0].timestamp <= root.end_time
    assert DURATION_KEY == traces_summary.DURATION_KEY  # the name the harness reads
    assert_tree(mine, root)


# ---- sampling -------------------------------------------------------------------------------

async def test_sampling_zero_follows_the_parent_and_records_nothing_alone(shared_dbs, user):
    exporter = InMemorySpanExporter()
    async with traced_app(shared_dbs["optimized"], exporter,
                          tracing={"sampling": 0.0}) as (app, client):
        h = auth(user["api_key"])
        assert (await client.get(OVERVIEW, headers=h)).status_code == 200
        assert (await client.get("/api/v1/activity", headers=h)).status_code == 200
        assert await app.state.resources.jobs.drain(timeout=10)
        assert exporter.get_finished_spans() == ()
        r = await client.get("/api/v1/activity", headers={**h, **traceparent(sampled=True)})
        assert r.status_code == 200
        spans = list(exporter.get_finished_spans())
    root = server_span(spans, "/api/v1/activity")
    assert format(root.context.trace_id, "032x") == CLIENT_TRACE
    assert {s.context.trace_id for s in spans} == {root.context.trace_id}


async def test_a_parent_that_says_not_sampled_is_obeyed_without_asking_the_sampler(
        shared_dbs, user):
    """An unsampled caller's request skips the instrumentation (`trace_gate`): no span of
    its trace is recorded, and the sampler is never asked about it (the middleware, the
    asyncpg wrapper and the service's spans all step aside), while a sampled one is."""
    exporter = InMemorySpanExporter()
    async with traced_app(shared_dbs["optimized"], exporter,
                          tracing={"sampling": 1.0}) as (app, client):
        sampler = app.state.tracing.provider.sampler
        asked: list[int] = []
        should_sample = sampler.should_sample

        def spy(parent_context, trace_id, *args, **kwargs):
            asked.append(trace_id)
            return should_sample(parent_context, trace_id, *args, **kwargs)

        sampler.should_sample = spy
        r = await client.get("/api/v1/activity", headers={**auth(user["api_key"]),
                                                          **traceparent(sampled=False)})
        assert r.status_code == 200
        assert int(CLIENT_TRACE, 16) not in asked
        unsampled = [s for s in exporter.get_finished_spans()
                     if s.context.trace_id == int(CLIENT_TRACE, 16)]
        r = await client.get("/api/v1/activity", headers={**auth(user["api_key"]),
                                                          **traceparent(sampled=True)})
        assert r.status_code == 200
        assert asked.count(int(CLIENT_TRACE, 16)) >= 2  # the server span and its query
    assert unsampled == []
    assert db_spans(trace_of(list(exporter.get_finished_spans()),
                             server_span(list(exporter.get_finished_spans()),
                                         "/api/v1/activity")))


# ---- off means off; shutdown undoes everything ------------------------------------------------

async def test_exporter_none_builds_no_provider_and_instruments_nothing(shared_dbs, user):
    handlers = list(logging.getLogger(LOGGER).handlers)
    async with traced_app(shared_dbs["optimized"]) as (app, client):
        tracing, resources = app.state.tracing, app.state.resources
        assert tracing.provider is None and tracing.tracer is None and not tracing.enabled
        assert resources.db.tracer is None and resources.jobs.tracer is None
        assert resources.caches.dashboard.cache.tracer is None
        assert resources.caches.auth.tracer is None
        assert not AsyncPGInstrumentor().is_instrumented_by_opentelemetry
        assert not getattr(app, "_is_instrumented_by_opentelemetry", False)
        assert logging.getLogger(LOGGER).handlers == handlers
        r = await client.get(OVERVIEW, headers=auth(user["api_key"]))
        assert r.status_code == 200 and "traceparent" not in r.headers


async def test_shutdown_uninstruments_so_the_next_app_traces_into_its_own_exporter(
        shared_dbs, user):
    handlers = list(logging.getLogger(LOGGER).handlers)
    first, second = InMemorySpanExporter(), InMemorySpanExporter()
    async with traced_app(shared_dbs["optimized"], first) as (app, client):
        assert AsyncPGInstrumentor().is_instrumented_by_opentelemetry
        assert app._is_instrumented_by_opentelemetry
        await client.get("/api/v1/activity", headers=auth(user["api_key"]))
    assert not AsyncPGInstrumentor().is_instrumented_by_opentelemetry
    assert not app._is_instrumented_by_opentelemetry
    assert logging.getLogger(LOGGER).handlers == handlers
    seen = len(first.get_finished_spans())
    async with traced_app(shared_dbs["optimized"], second) as (_, client):
        await client.get("/api/v1/activity", headers=auth(user["api_key"]))
    assert len(first.get_finished_spans()) == seen
    assert db_spans(list(second.get_finished_spans()))


# ---- exporters --------------------------------------------------------------------------------

def otlp_spans(path: Path) -> list[dict]:
    """Every span in an OTLP-JSON lines file (each line one `resourceSpans` batch)."""
    spans = []
    for line in path.read_text().splitlines():
        batch = json.loads(line)
        for resource in batch["resourceSpans"]:
            for scope in resource["scopeSpans"]:
                spans.extend({**s, "resource": resource["resource"]} for s in scope["spans"])
    return spans


async def test_the_jsonl_exporter_writes_otlp_json_lines(shared_dbs, user, tmp_path):
    target = tmp_path / "run" / "spans-{pid}.jsonl"
    async with traced_app(shared_dbs["optimized"], tracing={
            "exporter": "jsonl", "jsonl_path": str(target)}) as (_, client):
        r = await client.get("/api/v1/activity", headers={**auth(user["api_key"]),
                                                          **traceparent(sampled=True)})
        assert r.status_code == 200
    path = tmp_path / "run" / f"spans-{os.getpid()}.jsonl"
    spans = otlp_spans(path)  # flushed at shutdown
    server = [s for s in spans if s["name"] == "GET /api/v1/activity"]
    assert len(server) == 1
    assert server[0]["traceId"] == CLIENT_TRACE and server[0]["parentSpanId"] == CLIENT_SPAN
    assert any(a["key"] == "db.system" for s in spans for a in s.get("attributes", []))
    resource = {a["key"]: a["value"] for a in server[0]["resource"]["attributes"]}
    assert resource["service.name"] == {"stringValue": "target_service"}


def test_workers_sharing_one_jsonl_file_write_whole_lines(tmp_path):
    """Two exporters on one path (as two uvicorn workers would be) never split a line."""
    path = tmp_path / "spans.jsonl"
    writers = [jsonl_exporter(path), jsonl_exporter(path)]
    providers = []
    for exporter in writers:
        provider = TracerProvider(shutdown_on_exit=False)
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        providers.append(provider)

    def emit(provider: TracerProvider, n: int) -> None:
        tracer = provider.get_tracer("test")
        for i in range(200):
            with tracer.start_as_current_span(f"span {n}-{i}", attributes={"pad": "x" * 5000}):
                pass

    threads = [threading.Thread(target=emit, args=(p, n)) for n, p in enumerate(providers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for provider in providers:
        provider.shutdown()
    spans = otlp_spans(path)
    assert sorted(s["name"] for s in spans) == sorted(
        f"span {n}-{i}" for n in range(2) for i in range(200))


# ---- secrets ----------------------------------------------------------------------------------

def test_the_processor_strips_queries_headers_and_parameters_in_both_conventions():
    provider, exporter = tracer_and_exporter()
    for _ in range(2):  # the second span meets every key a second time (kinds remembered)
        with provider.get_tracer("test").start_as_current_span("GET", attributes={
                "url.full": "https://u:pw@h.example/v1/x?api_key=SECRET1#frag",
                "url.original": "https://u:pwA@h.example/v1/y",  # credentials, no query
                "url.query": "api_key=SECRET2", "url.path": "/v1/x",
                "http.url": "http://h/v1/x?token=SECRET3", "http.target": "/v1/x?SECRET4",
                "http.request.header.authorization": ("Bearer SECRET5",),
                "http.request.header.xi_api_key": ("SECRET6",),
                "http.request.header.accept": ("application/json",),
                "db.statement": "SELECT 1 WHERE a = $1",
                "db.statement.parameters": "('SECRET7',)",
                "db.query.parameter.0": "SECRET8"}) as span:
            span.add_event("exception", {"exception.message":
                                         "error for url 'http://h/x?key=SECRET9' (503)"})
    first, second = exporter.get_finished_spans()
    for done in (first, second):
        exported = "\n".join(strings_of(done))
        assert "SECRET" not in exported and "pw@" not in exported and "pwA" not in exported
        assert done.attributes["url.full"] == "https://h.example/v1/x"
        assert done.attributes["url.original"] == "https://h.example/v1/y"
        assert done.attributes["url.path"] == "/v1/x"
        assert done.attributes["http.target"] == "/v1/x"
        assert done.attributes["http.request.header.accept"] == ("application/json",)
        assert done.attributes["db.statement"] == "SELECT 1 WHERE a = $1"
        assert done.events[0].attributes["exception.message"] == (
            "error for url 'http://h/x' (503)")
    provider.shutdown()


# ---- upstream ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def stub(datasets, tmp_path_factory) -> Iterator[StubProcess]:
    with healthy_stub_for(datasets.manifest, tmp_path_factory.mktemp("trace-stub"), XI_KEY,
                          fault_seed=5) as process:
        yield process


@pytest.fixture
def healthy_stub(stub: StubProcess) -> StubProcess:
    stub.admin.set_faults(preset="healthy")
    stub.admin.reset_stats()
    return stub


def upstream(stub: StubProcess, **overrides) -> ElevenLabsSettings:
    values = {"base_url": stub.url, "api_key": XI_KEY, "retry_base_delay_s": 0.01,
              "attempt_timeout_s": 1.0, "request_deadline_s": 3.0, "page_budget_s": 3.0,
              "breaker_failure_threshold": 1000}
    return ElevenLabsSettings(**(values | overrides))


def by_name(spans: list[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


async def test_upstream_attempts_and_http_client_spans_nest_in_the_request(
        fresh_db, healthy_stub, user, caplog):
    """One agent fails every attempt: its attempts are numbered with the reason they were
    retried for; each HTTP client span sits in its attempt; the snapshot writes the page
    queued are jobs in traces of their own, linked back to the request."""
    failing = user["elevenlabs_agent_ids"][0]
    healthy_stub.admin.set_faults(config={"per_agent": {failing: {"error_rate": 1.0}}})
    dsn = await fresh_db("optimized")
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("UPDATE agents SET config_snapshot = NULL, snapshot_updated_at = NULL "
                           "WHERE user_id = $1", user["user_id"])
    finally:
        await conn.close()
    exporter = InMemorySpanExporter()
    caplog.set_level(logging.WARNING, logger="target_service")
    async with traced_app(dsn, exporter, elevenlabs=upstream(healthy_stub)) as (app, client):
        lines = io.StringIO()
        app.state.tracing.log_handler.setStream(lines)
        r = await client.get("/api/v1/agents", headers=auth(user["api_key"]))
        assert r.status_code == 200 and r.json()["fallback_count"] == 1
        assert await app.state.resources.jobs.drain(timeout=10)
    spans = list(exporter.get_finished_spans())
    root = server_span(spans, "/api/v1/agents")
    mine = trace_of(spans, root)
    assert_tree(mine, root)
    ids = {s.context.span_id: s for s in mine}

    requests = by_name(mine, "elevenlabs.get_agent")
    assert {s.attributes["elevenlabs.agent_id"] for s in requests} == set(
        user["elevenlabs_agent_ids"])
    attempts = by_name(mine, "elevenlabs.attempt")
    bad = sorted((s for s in attempts if s.attributes["elevenlabs.agent_id"] == failing),
                 key=lambda s: s.attributes["elevenlabs.attempt"])
    assert [s.attributes["elevenlabs.attempt"] for s in bad] == [1, 2, 3, 4]
    assert "elevenlabs.retry_reason" not in bad[0].attributes
    for before, after in pairwise(bad):
        assert after.attributes["elevenlabs.retry_reason"] == \
            before.attributes["elevenlabs.failure_reason"]
    assert all(s.attributes["elevenlabs.outcome"] == "failure" for s in bad)
    good = [s for s in attempts if s.attributes["elevenlabs.agent_id"] != failing]
    assert good and all(s.attributes["elevenlabs.outcome"] == "success" for s in good)
    for attempt in attempts:
        assert ids[attempt.parent.span_id].name == "elevenlabs.get_agent"

    http = [s for s in mine if s.instrumentation_scope.name.endswith("httpx")]
    assert len(http) == len(attempts)
    for span in http:
        assert span.kind is SpanKind.CLIENT and ids[span.parent.span_id].name == \
            "elevenlabs.attempt"

    jobs = [s for s in spans if s.name == "job store_snapshot"]
    assert jobs and all(s.parent is None for s in jobs)
    assert all(s.links and s.links[0].context.trace_id == root.context.trace_id for s in jobs)

    # the failed attempts' warnings carry the request's trace id, on the record and the line
    trace_id = format(root.context.trace_id, "032x")
    failed = [rec for rec in caplog.records if "ElevenLabs attempt failed" in rec.getMessage()]
    assert failed and all(rec.trace_id == trace_id for rec in failed)
    assert f"trace_id={trace_id}" in lines.getvalue()


async def test_the_breaker_rejecting_is_a_span(shared_dbs, healthy_stub, user):
    """Nothing upstream succeeds, so nothing is written: the shared clone will do."""
    healthy_stub.admin.set_faults(preset="outage")
    exporter = InMemorySpanExporter()
    async with traced_app(shared_dbs["optimized"], exporter, elevenlabs=upstream(
            healthy_stub, breaker_failure_threshold=1, breaker_cooldown_s=30,
            max_retries=0)) as (_, client):
        for _ in range(2):
            assert (await client.get("/api/v1/agents",
                                     headers=auth(user["api_key"]))).status_code == 200
    rejected = by_name(list(exporter.get_finished_spans()), "elevenlabs.breaker.reject")
    assert rejected
    assert {s.attributes["elevenlabs.breaker.state"] for s in rejected} == {"open"}


async def test_no_span_holds_an_api_key_or_a_query_value(fresh_db, healthy_stub, user,
                                                         monkeypatch):
    """Even with every header asked for, the keys (the user's bearer key, its hash and the
    ElevenLabs key) and every query-string value stay out of every span and event."""
    for name in ("SERVER_REQUEST", "SERVER_RESPONSE", "CLIENT_REQUEST", "CLIENT_RESPONSE"):
        monkeypatch.setenv(f"OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_{name}", ".*")
    healthy_stub.admin.set_faults(preset="flaky")
    key = user["api_key"]
    today = datetime.now(UTC).date()
    start, end = str(today - timedelta(days=41)), str(today - timedelta(days=3))
    probe = "q7ZprobeValue31"
    query = {"from": start, "to": end, "granularity": "week", "api_key": key, "probe": probe}
    exporter = InMemorySpanExporter()
    async with traced_app(await fresh_db("optimized"), exporter,
                          elevenlabs=upstream(healthy_stub),
                          config_fresh_s=0.001) as (_, client):
        h = auth(key)
        for path in ("/api/v1/dashboard/analytics", "/api/v1/agents", "/api/v1/activity"):
            r = await client.get(path, headers=h, params=query)
            assert r.status_code == 200, r.text
        await client.get(f"/api/v1/agents/{user['agent_ids'][0]}", headers=h,
                         params={"api_key": key})
    spans = list(exporter.get_finished_spans())
    forbidden = [key, hashlib.sha256(key.encode()).hexdigest(), XI_KEY, probe, start, end,
                 "granularity=", "api_key="]
    assert len(spans) > 20
    for span in spans:
        for text in strings_of(span):
            for secret in forbidden:
                assert secret not in text, (span.name, text)
    # not vacuous: the URLs, headers and SQL were there, without the parts that must go
    analytics = server_span(spans, "/api/v1/dashboard/analytics")
    assert analytics.attributes.get("http.target", analytics.attributes.get("url.path")) \
        == "/api/v1/dashboard/analytics"
    assert any(k.startswith("http.request.header.") for k in analytics.attributes)
    assert not any("authorization" in k for s in spans for k in s.attributes)
    assert any("$1" in s.attributes.get("db.statement", "") for s in db_spans(spans))
    assert any(s.instrumentation_scope.name.endswith("httpx") for s in spans)


# ---- the service's own spans, one by one -------------------------------------------------------

async def test_a_write_traces_the_kpi_refresh_job(fresh_db, user):
    exporter = InMemorySpanExporter()
    async with traced_app(await fresh_db("optimized"), exporter) as (app, client):
        refresher = app.state.resources.refresher
        await refresher.wait_for_refresh(0, timeout=10)  # the start-up refresh
        count = refresher.refresh_count
        r = await client.post("/api/v1/calls", headers=auth(user["api_key"]), json={
            "agent_id": user["agent_ids"][0], "status": "completed", "direction": "inbound",
            "duration_seconds": 42, "cost": 0.05})
        assert r.status_code in (200, 201), r.text
        assert await refresher.wait_for_refresh(count, timeout=10)
        assert await app.state.resources.jobs.drain(timeout=10)
    spans = list(exporter.get_finished_spans())
    refreshes = [s for s in by_name(spans, "kpi_view.refresh")
                 if s.attributes["kpi.outcome"] == "ok"]
    assert refreshes
    ids = {s.context.span_id: s for s in spans}
    for refresh in refreshes:
        job = ids[refresh.parent.span_id]
        assert job.name == "job kpi_refresh" and job.parent is None
        assert job.attributes["job.queue"] == "service"
        statements = [s.attributes["db.statement"] for s in db_spans(spans)
                      if s.context.trace_id == refresh.context.trace_id]
        assert any("REFRESH MATERIALIZED VIEW" in q for q in statements), statements
    # the listener's keepalive and leader-lock queries are not traced
    assert not any(s.attributes.get("db.statement") in ("SELECT 1",
                                                        "SELECT pg_try_advisory_lock($1)")
                   for s in spans if s.parent is None)


async def test_single_flight_waits_and_stale_refreshes_are_spans():
    provider, exporter = tracer_and_exporter()
    clock = FakeClock()
    cache = MemoryCache("t", clock=clock, default_ttl=60, default_soft_ttl=10,
                        tracer=provider.get_tracer("test"))
    loader = GatedLoader("v")
    key = ("overview", 1, 7)
    leader = asyncio.create_task(cache.get_or_load(key, loader))
    await loader.started.wait()
    joined = asyncio.create_task(cache.get_or_load(key, loader))
    await asyncio.sleep(0)
    loader.open()
    assert await leader == ("v", "MISS") and await joined == ("v", "MISS")
    spans = list(exporter.get_finished_spans())
    lookups = by_name(spans, "cache.lookup t")
    assert sorted(s.attributes["cache.single_flight"] for s in lookups) == ["joined", "leader"]
    assert {s.attributes["cache.result"] for s in lookups} == {"miss"}
    assert all(s.attributes["cache.namespace"] == "overview" for s in lookups)
    (wait,) = by_name(spans, "cache.single_flight.wait")
    joined_lookup = next(s for s in lookups if s.attributes["cache.single_flight"] == "joined")
    assert wait.parent.span_id == joined_lookup.context.span_id
    (load,) = by_name(spans, "cache.load t")
    assert load.context.trace_id in {s.context.trace_id for s in lookups}

    exporter.clear()
    clock.advance(11)  # past the soft TTL: served stale, refreshed in a trace of its own
    fresh = GatedLoader("w")
    fresh.open()
    with provider.get_tracer("test").start_as_current_span("request"):
        assert await cache.get_or_load(key, fresh) == ("v", "STALE")
    await asyncio.sleep(0.01)
    spans = list(exporter.get_finished_spans())
    assert by_name(spans, "cache.lookup t") == []  # answered at once: an event
    (request,) = by_name(spans, "request")
    (stale,) = request.events
    assert stale.name == "cache.lookup t" and stale.attributes["cache.result"] == "stale"
    assert stale.attributes["cache.namespace"] == "overview"
    (refresh,) = by_name(spans, "cache.refresh t")
    assert refresh.parent is None and refresh.links[0].context == request.context
    await cache.close()
    provider.shutdown()
