"""The span spool: what the service writes is, after the harness reads it back, exactly
what the OTLP-JSON exporter would have written from the spans themselves."""

from __future__ import annotations

import io
import json
import pickle
import struct
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.json.file import FileSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, StatusCode

from target_service.span_spool import (
    SpoolError,
    SpoolSpanExporter,
    encode_batch,
    read_spool,
    spool_to_jsonl,
)


def made_spans() -> list[ReadableSpan]:
    """A small trace with every field the exporters write: kinds, parents, attributes of
    each type, events, a link, an error status, two instrumentation scopes."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "s", "n": 3}),
                              shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    server = provider.get_tracer("server", "1.2")
    db = provider.get_tracer("db")
    with server.start_as_current_span("GET /x", kind=SpanKind.SERVER, attributes={
            "http.route": "/x", "http.status_code": 200, "ratio": 0.5, "ok": True,
            "tags": ("a", "b")}) as root:
        root.add_event("cache.lookup auth", {"cache.result": "hit"})
        with db.start_as_current_span("SELECT", kind=SpanKind.CLIENT,
                                      attributes={"db.query.name": "q"}) as child:
            child.set_status(StatusCode.ERROR, "boom")
        with server.start_as_current_span("job", links=[Link(root.get_span_context(),
                                                             {"why": "asked"})]):
            pass
    provider.shutdown()
    return list(exporter.get_finished_spans())


def otlp_json(spans: list[ReadableSpan]) -> dict:
    out = io.StringIO()
    FileSpanExporter(stream=out).export(spans)
    return json.loads(out.getvalue())


def test_a_spooled_batch_reads_back_to_the_same_otlp_json():
    spans = made_spans()
    (back,) = read_spool(io.BytesIO(encode_batch(spans)))
    assert otlp_json(back) == otlp_json(spans)


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


def test_a_frame_cut_short_ends_the_spool_and_keeps_what_came_before():
    spans = made_spans()
    data = encode_batch(spans) + encode_batch(spans)[:-3]
    assert [len(b) for b in read_spool(io.BytesIO(data))] == [len(spans)]
    assert [len(b) for b in read_spool(io.BytesIO(data[:2]))] == []


def test_a_frame_naming_a_class_is_refused_not_run():
    body = pickle.dumps((1, {}, [Path("/etc/passwd")]))
    with pytest.raises(SpoolError, match="may not name"):
        list(read_spool(io.BytesIO(struct.pack("<I", len(body)) + body)))


@pytest.mark.parametrize("body", [pickle.dumps((99, {}, [])), b"not a pickle at all"])
def test_a_frame_of_another_version_or_not_a_frame_is_a_spool_error(body):
    with pytest.raises(SpoolError):
        list(read_spool(io.BytesIO(struct.pack("<I", len(body)) + body)))


def test_spool_to_jsonl_writes_the_lines_the_jsonl_exporter_writes(tmp_path):
    spans = made_spans()
    spool = tmp_path / "s.spool"
    spool.write_bytes(encode_batch(spans[:2]) + encode_batch(spans[2:]))
    seen: list[int] = []
    assert spool_to_jsonl(spool, tmp_path / "s.jsonl", on_batch=seen.append) == len(spans)
    assert seen == [2, len(spans)]
    lines = (tmp_path / "s.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [otlp_json(spans[:2]), otlp_json(spans[2:])]
