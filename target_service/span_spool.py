"""A span file that costs the service almost nothing to write: the spool.

The OTLP encoders are written in Python: turning one span into OTLP-JSON (the
`opentelemetry-exporter-otlp-json-file` package) took 53 µs here, into OTLP
protobuf 39 µs, against ~38 µs to create the span at all (measured with the
SDK's in-memory exporter; docs/tracing-notes.md). In the service that work runs
in the batch processor's thread, but under the GIL it is CPU taken from the
event loop, and at sampling 0.1 it was about a sixth of what a sampled request cost.

So a traced harness run exports to a spool instead: each batch is one frame
(`encode_batch`: a 4-byte magic, the body's length and CRC-32, then a pickle of
plain values: strings, numbers, tuples, dicts), written with one `os.write` on
an `O_APPEND` descriptor so workers may share the file. After the run, the
harness reads the frames back into SDK `ReadableSpan`s (`SpoolReader`: an
unpickler that refuses every class, so a spool cannot run code) and writes
`spans.jsonl` with the OTLP-JSON package's own exporter (`spool_to_jsonl`): the
lines are those the `jsonl` exporter writes from the same spans (every field
the encoder reads is kept, dropped counts and schema URLs included), their
encoding moved out of the measured process and out of the measured window.

A frame damaged by a process killed mid-write, or a short write, is skipped:
the reader looks for the next magic and counts what it skipped
(`SpoolReader.damaged`), so one torn frame costs that frame, not the rest.

Both sides use this module, so the frame's layout lives in one place.
"""

from __future__ import annotations

import contextlib
import io
import mmap
import os
import pickle
import struct
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.util import BoundedList
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import (
    Link,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
)

FORMAT = 2
"""The spool frame's version: the first element of every frame's pickle."""
MAGIC = b"OTSP"
_HEADER = struct.Struct("<4sII")  # magic, body length, CRC-32 of the body
MAX_FRAME = 64 << 20
"""A larger length is damage, not a batch (512 spans pickle to well under 1 MB)."""


class SpoolError(ValueError):
    """A spool, or a frame, that cannot be read."""


class SpoolVersionError(SpoolError):
    """A frame written by another release of this module: the whole spool is, not damage."""


# ---- writing (the service) -------------------------------------------------------------------

def _attrs(attributes: Any) -> dict[str, Any]:
    return dict(attributes) if attributes else {}


def _span_record(span: ReadableSpan) -> tuple:
    ctx = span.context
    parent = span.parent
    scope = span.instrumentation_scope
    return (
        span.name, ctx.trace_id, ctx.span_id, int(ctx.trace_flags),
        tuple(ctx.trace_state.items()) if ctx.trace_state else (),
        parent.span_id if parent is not None else None,
        parent.is_remote if parent is not None else False,
        span.kind.value, span.start_time, span.end_time,
        span.status.status_code.value, span.status.description,
        _attrs(span.attributes), span.dropped_attributes,
        tuple((e.name, e.timestamp, _attrs(e.attributes), e.dropped_attributes)
              for e in span.events), span.dropped_events,
        tuple((link.context.trace_id, link.context.span_id, int(link.context.trace_flags),
               link.context.is_remote, _attrs(link.attributes), link.dropped_attributes)
              for link in span.links), span.dropped_links,
        ((scope.name, scope.version, scope.schema_url, _attrs(scope.attributes))
         if scope is not None else ("", None, "", {})),
    )


def encode_batch(spans: Sequence[ReadableSpan]) -> bytes:
    """One frame: the batch's spans as plain values, each batch's resources once."""
    resources: dict[int, tuple[dict[str, Any], str]] = {}
    records = []
    for span in spans:
        key = id(span.resource)
        if key not in resources:
            resources[key] = (_attrs(span.resource.attributes), span.resource.schema_url)
        records.append((key, _span_record(span)))
    body = pickle.dumps((FORMAT, resources, records), protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(MAGIC, len(body), zlib.crc32(body)) + body


def open_append(path: Path) -> int:
    """An `O_APPEND` descriptor on `path` (its folder made): what both file exporters
    write through, so processes appending to one file never interleave a write."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)


def write_all(fd: int, data: bytes) -> None:
    """`data` written whole; normally one `os.write` (a short write continues it)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class SpoolSpanExporter(SpanExporter):
    """Appends each exported batch to `path` as one spool frame (one `os.write`)."""

    def __init__(self, path: Path) -> None:
        self._fd: int | None = open_append(path)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if not spans:
            return SpanExportResult.SUCCESS
        if self._fd is None:
            return SpanExportResult.FAILURE
        try:  # a short write (a full disk) tears the frame: the reader skips it
            write_all(self._fd, encode_batch(spans))
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


def _counted_attrs(attributes: dict[str, Any], dropped: int) -> Any:
    """The attributes, carrying their dropped count as the SDK's own container does."""
    if not dropped:
        return attributes
    bounded = BoundedAttributes(attributes=attributes, immutable=True)
    bounded.dropped = dropped
    return bounded


def _counted_list(items: list, dropped: int) -> Any:
    if not dropped:
        return items
    bounded = BoundedList.from_seq(None, items)
    bounded.dropped = dropped
    return bounded


def _span(record: tuple, resource: Resource) -> ReadableSpan:
    (name, trace_id, span_id, flags, trace_state, parent_id, parent_remote, kind, start, end,
     status, description, attributes, dropped_attributes, events, dropped_events, links,
     dropped_links, (scope, version, schema_url, scope_attributes)) = record
    state = TraceState(list(trace_state)) if trace_state else None
    parent = (SpanContext(trace_id, parent_id, is_remote=parent_remote,
                          trace_flags=TraceFlags(flags)) if parent_id is not None else None)
    return ReadableSpan(
        name=name,
        context=SpanContext(trace_id, span_id, is_remote=False, trace_flags=TraceFlags(flags),
                            trace_state=state),
        parent=parent, resource=resource,
        attributes=_counted_attrs(attributes, dropped_attributes),
        events=_counted_list([Event(n, _counted_attrs(a, d), t) for n, t, a, d in events],
                             dropped_events),
        links=_counted_list([Link(SpanContext(t, s, is_remote=r, trace_flags=TraceFlags(f)),
                                  _counted_attrs(a, d)) for t, s, f, r, a, d in links],
                            dropped_links),
        kind=SpanKind(kind), status=Status(StatusCode(status), description),
        start_time=start, end_time=end,
        instrumentation_scope=InstrumentationScope(scope, version, schema_url or None,
                                                   scope_attributes or None))


def _batch(body: bytes) -> list[ReadableSpan]:
    version, resources, records = _PlainUnpickler(io.BytesIO(body)).load()
    if version != FORMAT:
        raise SpoolVersionError(f"span spool frame version {version!r}, this reads {FORMAT}")
    made = {key: Resource(attrs, schema_url or None)
            for key, (attrs, schema_url) in resources.items()}
    return [_span(record, made[key]) for key, record in records]


class SpoolReader:
    """The batches of a spool, in the order written; damaged frames are skipped and
    counted (`damaged`, `skipped_bytes`), the reader resuming at the next magic."""

    def __init__(self, data: bytes | mmap.mmap) -> None:
        self._data = data
        self.damaged = 0
        self.skipped_bytes = 0
        self.spans = 0
        """Spans read so far."""

    def __iter__(self) -> Iterator[list[ReadableSpan]]:
        data, pos, end = self._data, 0, len(self._data)
        while pos < end:
            batch, size = self._frame_at(pos)
            if batch is None:
                resume = data.find(MAGIC, pos + 1)
                resume = end if resume < 0 else resume
                self.damaged += 1
                self.skipped_bytes += resume - pos
                pos = resume
                continue
            pos += size
            self.spans += len(batch)
            yield batch

    def _frame_at(self, pos: int) -> tuple[list[ReadableSpan] | None, int]:
        """The batch at `pos` and the frame's length, or (None, 0) if it is damaged."""
        data = self._data
        if pos + _HEADER.size > len(data):
            return None, 0
        magic, length, crc = _HEADER.unpack_from(data, pos)
        start = pos + _HEADER.size
        if magic != MAGIC or length > MAX_FRAME or start + length > len(data):
            return None, 0
        body = data[start:start + length]
        if zlib.crc32(body) != crc:
            return None, 0
        try:
            return _batch(body), _HEADER.size + length
        except SpoolVersionError:
            raise
        except Exception:  # noqa: BLE001 - a frame that passed its CRC and is not ours
            return None, 0


def read_spool(stream: IO[bytes]) -> Iterator[list[ReadableSpan]]:
    """The undamaged batches of a spool (see `SpoolReader` for what was skipped)."""
    return iter(SpoolReader(stream.read()))


def spool_to_jsonl(spool: Path, jsonl: Path,
                   on_batch: Callable[[int], None] | None = None) -> SpoolReader:
    """Write the spool's spans to `jsonl` as OTLP-JSON lines, one per batch, as the
    `jsonl` exporter writes them; via a temporary file, so a failure leaves no partial
    `jsonl`. Returns the reader: the `spans` written, and what was `damaged`.
    `on_batch(spans_so_far)` after each batch, for progress."""
    from opentelemetry.exporter.otlp.json.file import FileSpanExporter

    partial = jsonl.with_name(jsonl.name + ".partial")
    with spool.open("rb") as src, contextlib.ExitStack() as stack:
        size = os.fstat(src.fileno()).st_size
        data = (stack.enter_context(mmap.mmap(src.fileno(), 0, access=mmap.ACCESS_READ))
                if size else b"")
        reader = SpoolReader(data)
        try:
            with partial.open("w", encoding="utf-8") as out:
                exporter = FileSpanExporter(stream=out)
                for batch in reader:
                    if exporter.export(batch) is not SpanExportResult.SUCCESS:
                        raise SpoolError(f"could not write {jsonl}")
                    if on_batch is not None:
                        on_batch(reader.spans)
            partial.replace(jsonl)
        finally:
            partial.unlink(missing_ok=True)
    return reader
