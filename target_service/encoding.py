"""JSON encoding of response models, timed as a span of its own.

A response's encoding (pydantic's `model_dump_json`) is CPU work inside the
request that a trace should show as `serialization`, not fold into the
handler's or a cache load's self time (harness/analysis/traces.py names spans
`serialize*` so). Models are encoded here, where the caller holds the service's
tracer: routes answer with these bytes instead of letting FastAPI encode the
returned model outside any span; cached bodies are encoded once, inside the
cache load that stores them, and sent as stored.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from pydantic import BaseModel

from target_service.tracing import maybe_span


def encode(model: BaseModel, tracer: trace.Tracer | None, **dump: Any) -> bytes:
    """`model` as JSON bytes, with aliases (as FastAPI encodes a `response_model`), inside
    a `serialize <Model>` span when tracing."""
    dump.setdefault("by_alias", True)
    with maybe_span(tracer, f"serialize {type(model).__name__}"):
        return model.model_dump_json(**dump).encode()
