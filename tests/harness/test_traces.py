"""Tracing in the harness, pure parts: the client's traceparent, the plugin's slowest and
reservoir samples, the trace summary of a span file with known truth, and the
service's exemplars and OpenMetrics answer. No Locust, no timing assertions."""

from __future__ import annotations

import asyncio
import json
import math
import random
import re
import tempfile
from pathlib import Path
from types import SimpleNamespace

import jsonschema
import msgpack
import pytest
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_parse

from harness.analysis import exposition
from harness.analysis import traces as summary
from harness.loadgen.aggregate import RunAggregate
from harness.loadgen.recorder import Recorder
from harness.loadgen.traces import (
    TraceparentSource,
    TraceSelection,
    WindowTraces,
    parse_sampling,
    rank,
    traceparent,
)
from harness.model import result as results
from harness.model.client import ClientTraces, Delta, TraceSample
from harness.model.trace_summary import TRACE_CATEGORIES
from harness.run.record import read_spans
from target_service.telemetry import (
    RequestMetricsMiddleware,
    ServiceMetrics,
    trace_exemplar,
    wants_openmetrics,
)
from tests.builders import T0, otlp_line, otlp_server_span, otlp_span

TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-(0[01])$")


# ---- the client's traceparent ----------------------------------------------------------

def test_traceparent_is_w3c_and_read_back_by_opentelemetry():
    source = TraceparentSource(0.5, random.Random(7))
    propagator = TraceContextTextMapPropagator()
    for _ in range(200):
        header, trace_id, sampled = source.next()
        match = TRACEPARENT.match(header)
        assert match, header
        assert match[1] == trace_id and int(trace_id, 16) and int(match[2], 16)
        assert match[3] == ("01" if sampled else "00")
        ctx = trace.get_current_span(propagator.extract({"traceparent": header}))
        span = ctx.get_span_context()
        assert span.is_valid and span.is_remote
        assert format(span.trace_id, "032x") == trace_id
        assert span.trace_flags.sampled is sampled


def test_traceparent_refuses_ids_out_of_range():
    assert traceparent(1, 1, True) == "00-" + "0" * 31 + "1-" + "0" * 15 + "1-01"
    for trace_id, span_id in ((0, 1), (1, 0), (1 << 128, 1), (1, 1 << 64)):
        with pytest.raises(ValueError):
            traceparent(trace_id, span_id, False)


@pytest.mark.parametrize("p", [0.0, 0.01, 0.1, 0.5, 1.0])
def test_sampled_flags_follow_the_sampling_probability(p):
    n = 20_000
    source = TraceparentSource(p, random.Random(2024))
    sampled = sum(source.next()[2] for _ in range(n))
    if p in (0.0, 1.0):
        assert sampled == n * p  # exactly none, exactly all
    else:  # seeded, so deterministic; the bound is 5 standard deviations
        assert abs(sampled - n * p) <= 5 * math.sqrt(n * p * (1 - p))


def test_trace_ids_are_unique_and_unseeded_sources_differ():
    a, b = TraceparentSource(1.0), TraceparentSource(1.0)
    ids = [a.next()[1] for _ in range(1000)] + [b.next()[1] for _ in range(1000)]
    assert len(set(ids)) == len(ids)
    seeded = [TraceparentSource(1.0, random.Random(1)).next() for _ in range(2)]
    assert seeded[0] == seeded[1]


def test_sampling_option_and_bad_values():
    assert parse_sampling("") is None and parse_sampling(None) is None
    assert parse_sampling("0.1") == 0.1 and parse_sampling(1) == 1.0
    assert parse_sampling("nope") is None and parse_sampling("1.5") is None
    with pytest.raises(ValueError):
        TraceparentSource(1.5)


# ---- the plugin's slowest and reservoir ---------------------------------------------------

def samples(n: int, seed: int = 3, t0: float = T0, seconds: int = 10,
            endpoints=("GET /a", "GET /b", "POST /c")) -> list[TraceSample]:
    rng = random.Random(seed)
    source = TraceparentSource(1.0, rng)
    return [TraceSample(trace_id=source.next()[1], endpoint=rng.choice(endpoints),
                        t=t0 + rng.uniform(0, seconds), latency_ms=round(rng.expovariate(0.1), 3))
            for _ in range(n)]


def truth(all_samples, n_slow, k):
    slowest = {}
    for s in all_samples:
        slowest.setdefault(s.endpoint, []).append(s)
    slowest = {e: sorted(v, key=lambda s: (s.latency_ms, s.trace_id), reverse=True)[:n_slow]
               for e, v in slowest.items()}
    reservoir = sorted(all_samples, key=lambda s: (rank(s.trace_id), s.trace_id))[:k]
    return slowest, {s.trace_id for s in reservoir}


def test_selection_keeps_the_slowest_per_endpoint_and_the_lowest_ranks():
    every = samples(2000)
    selection = TraceSelection(1.0, slowest_n=5, reservoir=40)
    selection.merge(every)
    doc = selection.doc()
    slowest, reservoir = truth(every, 5, 40)
    assert doc.slowest == slowest
    assert {s.trace_id for s in doc.reservoir} == reservoir
    assert [s.t for s in doc.reservoir] == sorted(s.t for s in doc.reservoir)


def test_selection_is_exact_across_processes_seconds_and_merge_order():
    """Each process keeps per second only its candidates; the master's merge of them, in
    any order, equals the selection over every sample."""
    every = samples(3000, seconds=20)
    by_process_second: dict[tuple[int, int], WindowTraces] = {}
    rng = random.Random(11)
    for s in every:
        key = (rng.randrange(3), int(s.t))
        by_process_second.setdefault(key, WindowTraces(5, 30)).add(s)
    pieces = [w.wire() for w in by_process_second.values()]
    assert sum(map(len, pieces)) < len(every)  # candidates only travel
    for order in range(3):
        random.Random(order).shuffle(pieces)
        selection = TraceSelection(1.0, slowest_n=5, reservoir=30)
        for piece in pieces:
            selection.merge(piece)
        slowest, reservoir = truth(every, 5, 30)
        assert selection.doc().slowest == slowest
        assert {s.trace_id for s in selection.doc().reservoir} == reservoir


def test_reservoir_rank_is_uniform():
    ranks = [rank(s.trace_id) for s in samples(5000)]
    assert all(0.0 <= r < 1.0 for r in ranks)
    assert abs(sum(ranks) / len(ranks) - 0.5) < 0.02
    assert abs(sum(r < 0.1 for r in ranks) / len(ranks) - 0.1) < 0.02


def traced_request(recorder: Recorder, source: TraceparentSource, key: str, start: float,
                   ms: float) -> tuple[str, bool]:
    _, trace_id, sampled = source.next()
    recorder.request(key, start, ms, 100, None,
                     {"trace_id": trace_id, "trace_sampled": sampled})
    return trace_id, sampled


def test_recorder_and_aggregate_keep_only_sampled_requests_of_the_measured_window():
    recorder = Recorder(clock=lambda: T0 + 30)
    source = TraceparentSource(0.5, random.Random(5))
    agg = RunAggregate(warmup_s=10, trace_sampling=0.5)
    agg.start(T0)
    agg.spawn_complete(T0 + 1)
    # a very slow sampled request in the warm-up must not be kept
    warm_id, _ = traced_request(recorder, TraceparentSource(1.0, random.Random(1)),
                                "GET /a", T0 + 5, 99_999.0)
    kept = {}
    for i in range(400):
        start = T0 + 10 + i * 0.05
        trace_id, sampled = traced_request(recorder, source, "GET /a", start, float(i))
        if sampled:
            kept[trace_id] = float(i)
    recorder.request("GET /a", T0 + 12, 1.0, 10, None, {"user_id": 1})  # untraced
    delta = recorder.take_delta()
    # it travels as Locust sends it: model_dump -> msgpack -> validate on the master
    wire = Delta.model_validate(msgpack.unpackb(msgpack.packb(delta.model_dump())))
    agg.merge(wire, "w1")
    agg.stopping(T0 + 40)
    doc = agg.client_doc("2.x", role="master", workers=1)
    assert doc.endpoints["GET /a"].traced == len(kept)
    assert doc.endpoints["GET /a"].count == 401
    slowest = doc.traces.slowest["GET /a"]
    assert warm_id not in {s.trace_id for s in slowest}
    assert [s.latency_ms for s in slowest] == sorted(kept.values(), reverse=True)[:5]
    assert {s.trace_id for s in doc.traces.reservoir} <= set(kept)
    assert len(doc.traces.reservoir) == min(len(kept), doc.traces.reservoir_size)
    assert doc.traces.sampling == 0.5


def test_untraced_runs_have_no_trace_section():
    agg = RunAggregate(warmup_s=0)
    agg.start(T0)
    assert agg.client_doc("2.x", role="local", workers=0).traces is None


# ---- the trace summary, on a span file with known truth ------------------------------------

A, B, C, D, E = ("a" * 31 + "1", "b" * 31 + "2", "c" * 31 + "3", "d" * 31 + "4", "e" * 31 + "5")
JOB = "f" * 31 + "6"
OVERVIEW, ANALYTICS, AGENTS = ("/api/v1/dashboard/overview", "/api/v1/dashboard/analytics",
                               "/api/v1/agents")
PG = {"db_system": "postgresql"}


def sid(n: int) -> str:
    return f"{n:016x}"


def span_file() -> list[str]:
    """Five request traces and a background one; the expected ms are in `EXPECTED`."""
    a = [  # sequential, the DB inside cache.load: cache gets only its own time
        otlp_server_span(A, sid(1), "GET", OVERVIEW, 0, 100),
        otlp_span(A, sid(2), "cache.lookup auth", 2, 4, sid(1), cache_name="auth"),
        otlp_span(A, sid(3), "cache.lookup dashboard", 10, 60, sid(1)),
        otlp_span(A, sid(4), "cache.load dashboard", 12, 58, sid(3)),
        otlp_span(A, sid(5), "db.pool.acquire", 14, 20, sid(4)),
        otlp_span(A, sid(6), "SELECT", 20, 50, sid(4), kind="client", db_query_name="kpi_view",
                  **PG),
    ]
    b = [  # four queries of a chart load in parallel: the instants are shared
        otlp_server_span(B, sid(11), "GET", ANALYTICS, 0, 40),
        otlp_span(B, sid(12), "cache.load dashboard", 5, 35, sid(11)),
        otlp_span(B, sid(13), "SELECT", 10, 30, sid(12), kind="client", **PG),
        otlp_span(B, sid(14), "SELECT", 10, 20, sid(12), kind="client", **PG),
    ]
    c = [  # ElevenLabs (its own span and the HTTP client's) beside a query
        otlp_server_span(C, sid(21), "GET", AGENTS, 0, 30),
        otlp_span(C, sid(22), "elevenlabs.get_agent", 2, 22, sid(21)),
        otlp_span(C, sid(23), "GET", 4, 20, sid(22), kind="client", http_method="GET"),
        otlp_span(C, sid(24), "SELECT", 10, 14, sid(21), kind="client", **PG),
    ]
    d = [  # a span whose parent was lost counts under the server span; one outliving it
        otlp_server_span(D, sid(31), "GET", OVERVIEW, 0, 10),
        otlp_span(D, sid(32), "cache.lookup dashboard", 2, 4, sid(99)),
        otlp_span(D, sid(33), "SELECT", 8, 15, sid(31), kind="client", **PG),
    ]
    e = [  # before the measured window: not in the shares
        otlp_server_span(E, sid(41), "GET", OVERVIEW, -5000, -4000),
    ]
    job = [otlp_span(JOB, sid(51), "job store_snapshot", 0, 5),
           otlp_span(JOB, sid(52), "UPDATE", 1, 4, sid(51), kind="client", **PG)]
    # batches mix traces and split one across lines, as the batch processor does
    return [otlp_line(a[:3] + b), otlp_line(a[3:] + c + job[:1]), "{not json", "",
            otlp_line(d + e + job[1:])]


EXPECTED = {
    A: {"app": 48, "cache": 2 + 4 + 10, "pool_wait": 6, "db": 30},
    B: {"app": 10, "cache": 10, "db": 20},
    C: {"app": 10, "upstream": 18, "db": 2},
    D: {"app": 6, "cache": 2, "db": 2},
}
SERVER_MS = {A: 100, B: 40, C: 30, D: 10}


def parsed() -> tuple[list[summary.Span], int]:
    """The span file as `harness run` reads it (`record.read_spans`), not a copy of it."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "spans.jsonl"
        path.write_text("\n".join(span_file()) + "\n", encoding="utf-8")
        return read_spans(path)


def full(values: dict) -> dict:
    return {c: float(values.get(c, 0)) for c in TRACE_CATEGORIES}


@pytest.mark.parametrize("trace_id", list(EXPECTED))
def test_exclusive_time_per_category(trace_id):
    spans, _ = parsed()
    traces, background = summary.request_traces(spans)
    assert set(traces) == {A, B, C, D, E} and background == 1
    got = traces[trace_id].breakdown_ms()
    assert got == pytest.approx(full(EXPECTED[trace_id]), abs=1e-6)
    assert sum(got.values()) == pytest.approx(SERVER_MS[trace_id])


def client_traces() -> ClientTraces:
    slow = {f"GET {OVERVIEW}": [TraceSample(trace_id=A, endpoint=f"GET {OVERVIEW}", t=T0,
                                            latency_ms=103.5),
                                TraceSample(trace_id="9" * 32, endpoint=f"GET {OVERVIEW}", t=T0,
                                            latency_ms=50.0, failure="connection"),
                                TraceSample(trace_id=D, endpoint=f"GET {OVERVIEW}", t=T0,
                                            latency_ms=11.0)],
            f"GET {ANALYTICS}": [TraceSample(trace_id=B, endpoint=f"GET {ANALYTICS}", t=T0,
                                             latency_ms=41.0)]}
    reservoir = [TraceSample(trace_id=C, endpoint=f"GET {AGENTS}", t=T0, latency_ms=32.0)]
    return ClientTraces(sampling=1.0, slowest_n=5, reservoir_size=50, slowest=slow,
                        reservoir=reservoir)


def test_summary_of_a_span_file_with_known_truth():
    spans, bad = parsed()
    s = summary.summarize(spans, client_traces(),
                          traced={f"GET {OVERVIEW}": 3, f"GET {ANALYTICS}": 1},
                          window=(T0, T0 + 60), malformed_lines=bad)
    assert bad == 1 and s.malformed_lines == 1
    assert s.traces == 4 and s.background_traces == 1 and s.spans == len(spans)
    whole = sum(SERVER_MS.values())
    totals = {c: sum(EXPECTED[t].get(c, 0) for t in EXPECTED) for c in TRACE_CATEGORIES}
    assert s.shares.model_dump() == pytest.approx(
        {c: round(v / whole, 4) for c, v in totals.items()})
    assert sum(s.shares.model_dump().values()) == pytest.approx(1.0, abs=1e-3)

    overview = s.endpoints[f"GET {OVERVIEW}"]
    assert overview.server_traces == 2 and overview.traced_requests == 3
    assert overview.mean_ms.model_dump() == pytest.approx(
        {c: (full(EXPECTED[A])[c] + full(EXPECTED[D])[c]) / 2 for c in TRACE_CATEGORIES})
    first, lost, last = overview.slowest
    assert first.trace_id == A and first.client_ms == 103.5 and first.server_ms == 100
    assert first.network_queue_ms == pytest.approx(3.5) and first.spans == 6
    assert first.breakdown_ms.model_dump() == pytest.approx(full(EXPECTED[A]))
    assert lost.server_ms is None and lost.breakdown_ms is None and lost.failure == "connection"
    assert last.breakdown_ms.db == pytest.approx(2)  # clipped to its server span

    assert s.unmatched == ["9" * 32] and s.unmatched_count == 1
    gap = s.client_vs_server
    assert gap.samples == 4 and gap.max_ms == pytest.approx(3.5)
    assert gap.p50_ms == pytest.approx(1.0)  # gaps 1, 1, 2, 3.5
    assert s.no_spans == ["serialization"]
    assert any("no serialization span" in n for n in s.notes)
    assert any("1 of 5 kept client trace ids" in n for n in s.notes)


def test_without_client_samples_the_slowest_are_chosen_by_server_duration():
    spans, _ = parsed()
    s = summary.summarize(spans, None, window=(None, None))
    assert s.traces == 5  # no window: the early one counts too
    overview = s.endpoints[f"GET {OVERVIEW}"]
    assert [t.trace_id for t in overview.slowest] == [E, A, D]
    assert all(t.client_ms is None and t.network_queue_ms is None for t in overview.slowest)


def test_a_timed_serialize_event_is_serialization_time_of_its_span():
    """A `serialize` event with its duration is read as a child of the span it is on: 2 ms
    of the cache load's 6 go to serialization (the load's own time keeps the rest), an
    event without a duration or of another name is not time."""
    load = otlp_span(A, sid(2), "cache.load dashboard", 2, 8, parent=sid(1))
    at = int(load["startTimeUnixNano"]) - 2_000_000  # the server span's start, in ns
    load["events"] = [
        {"name": "serialize Overview", "timeUnixNano": str(at + 7_000_000),
         "attributes": [{"key": summary.DURATION_KEY, "value": {"intValue": "2000000"}}]},
        {"name": "serialize Other", "timeUnixNano": str(at + 4_000_000),
         "attributes": []},
        {"name": "cache.lookup dashboard", "timeUnixNano": str(at + 3_000_000),
         "attributes": [{"key": summary.DURATION_KEY, "value": {"intValue": "900000"}}]}]
    spans = summary.parse_batch(json.loads(otlp_line(
        [otlp_server_span(A, sid(1), "GET", OVERVIEW, 0, 10), load])))
    timed = [s for s in spans if s.category == "serialization"]
    assert len(timed) == 1 and timed[0].parent_id == sid(2)
    assert (timed[0].end - timed[0].start) == 2_000_000
    root = next(s for s in spans if s.kind == summary.SERVER)
    got = summary.breakdown_ns(root, [s for s in spans if s is not root])
    assert got["serialization"] == 2e6
    assert got["cache"] == 4e6
    assert got["app"] == 4e6
    s = summary.summarize(spans, None, window=(None, None))
    assert "serialization" not in s.no_spans


def test_breakdown_adds_up_on_random_trees():
    rng = random.Random(99)
    for n in range(200):
        trace_id = f"{n + 1:032x}"
        spans = [otlp_server_span(trace_id, sid(1), "GET", OVERVIEW, 0, 100)]
        for i in range(2, rng.randint(2, 30)):
            parent = sid(rng.randint(1, i - 1))
            start = rng.uniform(-10, 100)
            spans.append(otlp_span(trace_id, sid(i), rng.choice(
                ["cache.load x", "SELECT", "db.pool.acquire", "elevenlabs.attempt", "work"]),
                start, start + rng.uniform(0, 60), parent,
                kind=rng.choice(["internal", "client"]), **PG))
        traces, _ = summary.request_traces(summary.parse_batch(json.loads(otlp_line(spans))))
        got = traces[trace_id].breakdown_ms()
        assert sum(got.values()) == pytest.approx(100)
        assert all(v >= -1e-9 for v in got.values())


def test_categories_and_other_encodings():
    span = otlp_server_span(A, sid(1), "GET", OVERVIEW, 0, 5)
    span["kind"] = "SPAN_KIND_SERVER"
    span["attributes"] = [{"key": "http.request.method", "value": {"stringValue": "GET"}},
                          {"key": "http.route", "value": {"stringValue": OVERVIEW}}]
    parsed_span = summary.parse_span(span)
    assert parsed_span.kind == 2 and parsed_span.endpoint == f"GET {OVERVIEW}"
    assert summary.category("cache.single_flight.wait", 1, {}) == "cache"
    assert summary.category("elevenlabs.breaker", 1, {}) == "upstream"
    assert summary.category("GET", 3, {}) == "upstream"
    assert summary.category("SELECT", 3, {"db.system": "postgresql"}) == "db"
    assert summary.category("serialize overview", 1, {}) == "serialization"
    assert summary.category("job warm_user", 1, {}) == "app"
    with pytest.raises(ValueError):
        summary.parse_batch({"nope": 1})


def test_a_record_with_traces_validates_and_old_records_have_none(tmp_path):
    from tests.builders import EndpointSpec, build_run

    built = build_run({f"GET {OVERVIEW}": EndpointSpec(rps=5)}, seconds=5, warmup_s=1)
    spans, _ = parsed()
    record = built.result.model_copy(update={"traces": summary.summarize(spans, client_traces())})
    raw = json.loads(record.model_dump_json())
    jsonschema.validate(raw, json.loads(results.SCHEMA_PATH.read_text()))
    results.save(record, tmp_path / "result.json")
    assert results.load(tmp_path / "result.json").traces == record.traces
    raw.pop("traces")
    (tmp_path / "old.json").write_text(json.dumps(raw))
    assert results.load(tmp_path / "old.json").traces is None


# ---- exemplars and OpenMetrics (target_service/telemetry.py) -----------------------------

def span_context(sampled: bool) -> SpanContext:
    return SpanContext(trace_id=int(A, 16), span_id=int(sid(7), 16), is_remote=False,
                       trace_flags=TraceFlags(TraceFlags.SAMPLED if sampled else 0))


def served(metrics: ServiceMetrics, path: str, accept: str | None = None,
           sampled: bool | None = None) -> tuple[int, bytes, str]:
    """One request through `RequestMetricsMiddleware`, inside a span as the tracing
    middleware would leave it (None: no span); `/metrics` answers `render()`."""
    out: dict = {"body": b""}

    async def app(scope, receive, send):
        scope["route"] = SimpleNamespace(path=scope["path"])  # routing, as Starlette does
        body, ctype = metrics.render() if scope["path"] == "/metrics" else (b"{}", "json")
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", ctype.encode())]})
        await send({"type": "http.response.body", "body": body})

    async def send(message):
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
            out["type"] = dict(message["headers"])[b"content-type"].decode()
        else:
            out["body"] += message["body"]

    async def receive():
        return {"type": "http.request"}

    headers = [(b"accept", accept.encode())] if accept else []
    scope = {"type": "http", "method": "GET", "path": path, "headers": headers}
    middleware = RequestMetricsMiddleware(app, metrics)
    if sampled is None:
        asyncio.run(middleware(scope, receive, send))
    else:
        with trace.use_span(NonRecordingSpan(span_context(sampled))):
            asyncio.run(middleware(scope, receive, send))
    return out["status"], out["body"], out["type"]


def test_only_sampled_requests_get_an_exemplar_of_hex_ids():
    assert trace_exemplar() is None
    with trace.use_span(NonRecordingSpan(span_context(False))):
        assert trace_exemplar() is None
    with trace.use_span(NonRecordingSpan(span_context(True))):
        assert trace_exemplar() == {"trace_id": A, "span_id": sid(7)}


def test_metrics_serve_openmetrics_with_exemplars_only_when_asked():
    metrics = ServiceMetrics(CollectorRegistry())
    metrics.publish_settings({"profile": "optimized"})
    served(metrics, "/api/v1/dashboard/overview", sampled=True)
    served(metrics, "/api/v1/activity", sampled=False)
    served(metrics, "/api/v1/agents")
    # the harness's scrapers send no openmetrics Accept: the classic format, parsed as before
    _, plain, ctype = served(metrics, "/metrics", accept="*/*")
    assert ctype.startswith("text/plain") and b"# {" not in plain and A.encode() not in plain
    assert exposition.parse(plain.decode())
    # Prometheus asks for OpenMetrics first
    _, body, ctype = served(
        metrics, "/metrics",
        accept="application/openmetrics-text;version=1.0.0;q=0.75,text/plain;version=0.0.4;q=0.5")
    assert ctype.startswith("application/openmetrics-text")
    text = body.decode()
    assert text.rstrip().endswith("# EOF")
    exemplars = [(s.labels, s.exemplar) for f in om_parse(text)
                 if f.name == "http_request_duration_seconds"
                 for s in f.samples if s.exemplar is not None]
    assert exemplars, text
    assert {labels["route"] for labels, _ in exemplars} == {"/api/v1/dashboard/overview"}
    assert all(e.labels == {"trace_id": A, "span_id": sid(7)} for _, e in exemplars)
    # an explicit answer, and Accept headers that do not ask
    assert metrics.render("application/openmetrics-text")[1].startswith("application/openm")
    assert not wants_openmetrics("text/plain;version=0.0.4")
    assert not wants_openmetrics("application/openmetrics-text; q=0")
    assert not wants_openmetrics(None)
