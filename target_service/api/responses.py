"""Responses built from pre-encoded JSON (see `target_service/encoding.py`)."""

from __future__ import annotations

from fastapi import Response
from opentelemetry import trace
from pydantic import BaseModel

from target_service.encoding import encode


def json_response(body: bytes, cache_status: str | None = None,
                  status_code: int = 200) -> Response:
    """Pre-encoded JSON (cached bodies are sent as stored), with X-Cache when cached."""
    headers = {"X-Cache": cache_status} if cache_status else None
    return Response(body, status_code=status_code, media_type="application/json",
                    headers=headers)


def model_response(model: BaseModel, tracer: trace.Tracer | None,
                   status_code: int = 200) -> Response:
    """`model` encoded inside a `serialize` span: the route's `response_model` still
    documents it, FastAPI no longer encodes it outside the trace."""
    return json_response(encode(model, tracer), status_code=status_code)
