"""The span spool: what the service writes is, after the harness reads it back, exactly
what the OTLP-JSON exporter would have written from the spans themselves."""

from __future__ import annotations

import io
import json
import pickle
import struct
import zlib
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.json.file import FileSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    StatusCode,
    TraceFlags,
    TraceState,
    set_span_in_context,
)

from target_service.span_spool import (
    FORMAT,
    MAGIC,
    MAX_FRAME,
    SpoolReader,
    SpoolSpanExporter,
    SpoolVersionError,
    encode_batch,
    read_spool,
    spool_to_jsonl,
)


def made_spans() -> list[ReadableSpan]:
    """A small trace with every field the exporters write: kinds, parents, attributes of
    each type, events, links, an error status, scopes with schema URLs and attributes, a
    trace state, and attributes, events and links dropped by the span limits."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": "s", "n": 3}, schema_url="https://r/1"),
        span_limits=SpanLimits(max_span_attributes=5, max_events=2, max_links=1,
                               max_event_attributes=1, max_link_attributes=1),
        shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    server = provider.get_tracer("server", "1.2", schema_url="https://s/1",
                                 attributes={"scope.kind": "server"})
    db = provider.get_tracer("db")
    caller = SpanContext(0xabc, 0xdef, is_remote=True, trace_flags=TraceFlags(1),
                         trace_state=TraceState([("vendor", "v1")]))
    with server.start_as_current_span(
            "GET /x", context=set_span_in_context(NonRecordingSpan(caller)),
            kind=SpanKind.SERVER, attributes={
                "http.route": "/x", "http.status_code": 200, "ratio": 0.5, "ok": True,
                "tags": ("a", "b"), "one.too.many": 1}) as root:
        root.add_event("cache.lookup auth", {"cache.result": "hit", "cache.name": "auth"})
        root.add_event("e2")
        root.add_event("e3")
        with db.start_as_current_span("SELECT", kind=SpanKind.CLIENT,
                                      attributes={"db.query.name": "q"}) as child:
            child.set_status(StatusCode.ERROR, "boom")
        with server.start_as_current_span("job", links=[
                Link(root.get_span_context(), {"why": "asked", "extra": 1}),
                Link(caller)]):
            pass
    provider.shutdown()
    return list(exporter.get_finished_spans())


def otlp_json(spans: list[ReadableSpan]) -> dict:
    out = io.StringIO()
    FileSpanExporter(stream=out).export(spans)
    return json.loads(out.getvalue())


def frame(body: bytes) -> bytes:
    """A well-formed frame around any body (the header as `encode_batch` writes it)."""
    return struct.pack("<4sII", MAGIC, len(body), zlib.crc32(body)) + body


def test_a_spooled_batch_reads_back_to_the_same_otlp_json():
    spans = made_spans()
    encoded = otlp_json(spans)
    text = json.dumps(encoded)
    for field in ('"schemaUrl": "https://s/1"', '"traceState": "vendor=v1"',
                  '"droppedAttributesCount": 1', '"droppedEventsCount": 1',
                  '"droppedLinksCount": 1'):
        assert field in text, field  # the fixture really exercises each field
    (back,) = read_spool(io.BytesIO(encode_batch(spans)))
    assert otlp_json(back) == encoded


def test_the_exporter_appends_one_frame_per_batch_and_two_writers_share_a_file(tmp_path):
    spans = made_spans()
    path = tmp_path / "s.spool"
    first, second = SpoolSpanExporter(path), SpoolSpanExporter(path)
    first.export(spans[:1])
    second.export(spans[1:])
    first.export([])  # nothing to write: no frame
    first.shutdown()
    second.shutdown()
    batches = list(read_spool(path.open("rb")))
    assert [len(b) for b in batches] == [1, len(spans) - 1]
    assert otlp_json([s for b in batches for s in b]) == otlp_json(spans)


def test_a_damaged_frame_costs_itself_and_the_reader_resumes_at_the_next():
    spans = made_spans()
    good = encode_batch(spans)
    torn = good[: len(good) // 2]  # a worker killed mid-write, another appending after it
    flipped = bytearray(good)
    flipped[-1] ^= 0xFF  # a body that fails its CRC
    reader = SpoolReader(good + torn + good + bytes(flipped) + good[:-3])
    assert [len(b) for b in reader] == [len(spans), len(spans)]
    assert reader.damaged == 3 and reader.spans == 2 * len(spans)
    assert reader.skipped_bytes == len(torn) + len(flipped) + len(good) - 3


def test_a_frame_naming_a_class_is_skipped_not_run():
    reader = SpoolReader(frame(pickle.dumps((FORMAT, {}, [Path("/etc/passwd")]))))
    assert list(reader) == [] and reader.damaged == 1


def test_a_frame_that_is_not_a_batch_or_claims_a_huge_length_is_damage():
    huge = struct.pack("<4sII", MAGIC, MAX_FRAME + 1, 0)
    reader = SpoolReader(frame(b"not a pickle at all") + huge + b"\0" * 16)
    assert list(reader) == [] and reader.damaged == 2


def test_a_spool_of_another_format_version_is_an_error_not_damage():
    with pytest.raises(SpoolVersionError):
        list(SpoolReader(frame(pickle.dumps((FORMAT + 1, {}, [])))))


def test_spool_to_jsonl_writes_the_lines_the_jsonl_exporter_writes(tmp_path):
    spans = made_spans()
    spool = tmp_path / "s.spool"
    spool.write_bytes(encode_batch(spans[:2]) + encode_batch(spans[2:]))
    seen: list[int] = []
    reader = spool_to_jsonl(spool, tmp_path / "s.jsonl", on_batch=seen.append)
    assert reader.spans == len(spans) and reader.damaged == 0
    assert seen == [2, len(spans)]
    lines = (tmp_path / "s.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [otlp_json(spans[:2]), otlp_json(spans[2:])]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.jsonl", "s.spool"]


def test_an_empty_spool_writes_an_empty_file(tmp_path):
    spool = tmp_path / "s.spool"
    spool.write_bytes(b"")
    assert spool_to_jsonl(spool, tmp_path / "s.jsonl").spans == 0
    assert (tmp_path / "s.jsonl").read_text() == ""
