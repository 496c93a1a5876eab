"""JSON encoding of response models, timed as a `serialize` event.

A response's encoding (pydantic's `model_dump_json`) is CPU work inside the
request that a trace should show as `serialization`, not fold into the
handler's or a cache load's self time. Models are encoded here, where the
caller holds the service's tracer: routes answer with these bytes instead of
letting FastAPI encode the returned model outside any trace; cached bodies are
encoded once, inside the cache load that stores them, and sent as stored.

The encoding is an event `serialize <Model>` on the span it happens in, with
its duration (`serialization.duration_ns`), not a span of its own: a span cost
a sampled request ~25-30 µs to make, redact and export, more than most
encodings take, where an event costs ~4 (docs/tracing-notes.md).
harness/analysis/traces.py reads the event's interval, ending at its
timestamp, as a child span in `serialization`.
"""

from __future__ import annotations

import time
from typing import Any

from opentelemetry import trace
from pydantic import BaseModel

from target_service.tracing import recording_span

DURATION_KEY = "serialization.duration_ns"
"""The event attribute the harness reads (harness.analysis.traces.DURATION_KEY)."""


def encode(model: BaseModel, tracer: trace.Tracer | None, **dump: Any) -> bytes:
    """`model` as JSON bytes, with aliases (as FastAPI encodes a `response_model`), timed
    as a `serialize <Model>` event on the current span when that span records."""
    dump.setdefault("by_alias", True)
    span = recording_span() if tracer is not None else None
    if span is None:
        return model.model_dump_json(**dump).encode()
    start = time.perf_counter_ns()
    body = model.model_dump_json(**dump).encode()
    span.add_event(f"serialize {type(model).__name__}",
                   {DURATION_KEY: time.perf_counter_ns() - start})
    return body
