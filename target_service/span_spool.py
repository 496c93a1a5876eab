"""A span file that costs the service almost nothing to write: the spool.

The OTLP encoders are written in Python: turning one span into OTLP-JSON (the
`opentelemetry-exporter-otlp-json-file` package) took 53 µs here, into OTLP
protobuf 39 µs, against ~38 µs to create the span at all (measured with the
SDK's in-memory exporter; docs/tracing-notes.md). In the service that work runs
in the batch processor's thread, but under the GIL it is CPU taken from the
event loop, and at sampling 0.1 it was a fifth of what tracing cost a request.

So a traced harness run exports to a spool instead: each batch is one frame,
a 4-byte little-endian length and a pickle of plain values (strings, numbers,
tuples, dicts: `encode_batch`), written with one `os.write` on an `O_APPEND`
descriptor so workers may share the file. After the run, the harness reads the
frames back into SDK `ReadableSpan`s (`read_spool`, an unpickler that refuses
every class, so a spool cannot run code) and writes `spans.jsonl` with the
OTLP-JSON package's own exporter (`spool_to_jsonl`): the artifact is the same,
its encoding moved out of the measured process and out of the measured window.

Both sides use this module, so the frame's layout lives in one place.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags

FORMAT = 1
"""The spool frame's version: the first element of every frame's pickle."""
_LENGTH = struct.Struct("<I")


class SpoolError(ValueError):
    """A spool that cannot be read (not a spool, or a frame of an unknown version)."""


# ---- writing (the service) -------------------------------------------------------------------

def _attrs(attributes: Any) -> dict[str, Any]:
    return dict(attributes) if attributes else {}


def _span_record(span: ReadableSpan) -> tuple:
    ctx = span.context
    parent = span.parent
    scope = span.instrumentation_scope
    return (
        span.name, ctx.trace_id, ctx.span_id, int(ctx.trace_flags),
        parent.span_id if parent is not None else None,
        parent.is_remote if parent is not None else False,
        span.kind.value, span.start_time, span.end_time,
        span.status.status_code.value, span.status.description,
        _attrs(span.attributes),
        tuple((e.name, e.timestamp, _attrs(e.attributes)) for e in span.events),
        tuple((link.context.trace_id, link.context.span_id, int(link.context.trace_flags),
               link.context.is_remote, _attrs(link.attributes)) for link in span.links),
        (scope.name, scope.version) if scope is not None else ("", None),
    )


def encode_batch(spans: Sequence[ReadableSpan]) -> bytes:
    """One frame: the batch's spans as plain values, each batch's resources once."""
    resources: dict[int, dict[str, Any]] = {}
    records = []
    for span in spans:
        key = id(span.resource)
        if key not in resources:
            resources[key] = _attrs(span.resource.attributes)
        records.append((key, _span_record(span)))
    body = pickle.dumps((FORMAT, resources, records), protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(body)) + body


class SpoolSpanExporter(SpanExporter):
    """Appends each exported batch to `path` as one spool frame (one `os.write`)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if not spans:
            return SpanExportResult.SUCCESS
        if self._fd is None:
            return SpanExportResult.FAILURE
        data = memoryview(encode_batch(spans))
        try:
            while data:
                data = data[os.write(self._fd, data):]
        except OSError:
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


# ---- reading (the harness) -------------------------------------------------------------------

class _PlainUnpickler(pickle.Unpickler):
    """Refuses every class: a frame holds only builtin values."""

    def find_class(self, module: str, name: str) -> Any:
        raise SpoolError(f"a spool frame may not name {module}.{name}")


def _span(record: tuple, resource: Resource) -> ReadableSpan:
    (name, trace_id, span_id, flags, parent_id, parent_remote, kind, start, end,
     status, description, attributes, events, links, (scope, version)) = record
    parent = (SpanContext(trace_id, parent_id, is_remote=parent_remote,
                          trace_flags=TraceFlags(flags)) if parent_id is not None else None)
    return ReadableSpan(
        name=name,
        context=SpanContext(trace_id, span_id, is_remote=False, trace_flags=TraceFlags(flags)),
        parent=parent, resource=resource, attributes=attributes,
        events=[Event(n, a, t) for n, t, a in events],
        links=[Link(SpanContext(t, s, is_remote=r, trace_flags=TraceFlags(f)), a)
               for t, s, f, r, a in links],
        kind=SpanKind(kind), status=Status(StatusCode(status), description),
        start_time=start, end_time=end,
        instrumentation_scope=InstrumentationScope(scope, version))


def read_spool(stream: IO[bytes]) -> Iterator[list[ReadableSpan]]:
    """The batches of a spool, in the order written. A last frame cut short (a target
    killed mid-write) ends the spool; a frame that is not a spool's is a SpoolError."""
    while header := stream.read(_LENGTH.size):
        if len(header) < _LENGTH.size:
            return
        (size,) = _LENGTH.unpack(header)
        body = stream.read(size)
        if len(body) < size:
            return
        try:
            version, resources, records = _PlainUnpickler(io.BytesIO(body)).load()
        except SpoolError:
            raise
        except Exception as exc:
            raise SpoolError(f"not a span spool frame: {exc}") from exc
        if version != FORMAT:
            raise SpoolError(f"span spool frame version {version!r}, this reads {FORMAT}")
        made = {key: Resource(attrs) for key, attrs in resources.items()}
        yield [_span(record, made[key]) for key, record in records]


def spool_to_jsonl(spool: Path, jsonl: Path,
                   on_batch: Any = None) -> int:
    """Append the spool's spans to `jsonl` as OTLP-JSON lines (one per batch, as the
    `jsonl` exporter writes them); the number of spans. `on_batch(spans_so_far)` after
    each batch, for progress."""
    from opentelemetry.exporter.otlp.json.file import FileSpanExporter

    count = 0
    with spool.open("rb") as src, jsonl.open("a", encoding="utf-8") as out:
        exporter = FileSpanExporter(stream=out)
        for batch in read_spool(src):
            if exporter.export(batch) is not SpanExportResult.SUCCESS:
                raise SpoolError(f"could not write {jsonl}")
            count += len(batch)
            if on_batch is not None:
                on_batch(count)
    return count
