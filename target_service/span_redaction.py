"""What every span goes through before export: DB spans named, secrets and queries removed.

`ServiceSpanProcessor` sits in front of the exporter's processor. On start it
names an asyncpg span after the `Database` query running in the task
(`QUERY_NAME`, set by `db/pool.py`: `db.query.name`); on end it hands the
exporter a copy of the span (`redact`) without query strings (in URL
attributes and in URLs inside any text), credentials in URLs, credential
headers or SQL parameters, in the span's attributes and its events'. No
secret reaches a span file, an OTLP collector or the console (the tests send
API keys and query strings through a real app and look for them).

Redaction runs on every sampled span, so what it does with each attribute key
is decided once per key (`_kind`), and a span needing nothing is passed on
as it is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor

SENSITIVE_HEADERS = ("authorization", "proxy-authorization", "x-api-key", "xi-api-key",
                     "cookie", "set-cookie")
"""Headers never exported (the HTTP instrumentations' sanitize list is the same)."""

QUERY_NAME: ContextVar[str | None] = ContextVar("target_service_query_name", default=None)
"""The `Database` query running in this task; asyncpg spans started meanwhile carry it."""

_DROP = object()
_DROP_KEYS = frozenset({"url.query", "db.statement.parameters"})
_URL_KEYS = frozenset({"http.url", "url.full", "http.target", "url.original"})
_HEADER_PREFIXES = ("http.request.header.", "http.response.header.")
_URL_IN_TEXT = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://[^\s?#\"'<>]*)[?#][^\s\"'<>]*")
_USERINFO = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@?#]*@")


def strip_query(url: str) -> str:
    """The URL or path without its query string, fragment and credentials."""
    if "?" not in url and "#" not in url and "@" not in url:
        return url  # nothing to strip: the common case, kept off the regex engine
    return _USERINFO.sub(r"\1", re.split(r"[?#]", url, maxsplit=1)[0])


_KEEP, _URL, _TEXT = "keep", "url", "text"
_KINDS: dict[str, object] = {}
"""What redaction does with each attribute key, decided once per key (`_kind`): every
sampled span's ~15 attributes went through prefix checks each time it ended."""
_MAX_KINDS = 4096  # keys are the instrumentations' attribute names; this only bounds it


def _kind(key: str) -> object:
    """`_DROP`, `_KEEP` (an allowed header), `_URL` (a URL attribute) or `_TEXT` (any
    other: a string in it may still hold a URL with a query)."""
    kind = _KINDS.get(key)
    if kind is not None:
        return kind
    if key in _DROP_KEYS or key.startswith("db.query.parameter"):
        kind = _DROP
    elif key.startswith(_HEADER_PREFIXES):
        header = key.split(".", 3)[3].replace("_", "-").lower()
        kind = _DROP if header in SENSITIVE_HEADERS else _KEEP
    else:
        kind = _URL if key in _URL_KEYS else _TEXT
    if len(_KINDS) < _MAX_KINDS:
        _KINDS[key] = kind
    return kind


def _clean(key: str, value: Any) -> Any:
    """The value to export for an attribute, or `_DROP`."""
    kind = _kind(key)
    if kind is _DROP:
        return _DROP
    if kind is _KEEP:
        return value
    if isinstance(value, str):
        if kind is _URL:
            return strip_query(value)
        return _URL_IN_TEXT.sub(r"\1", value) if "://" in value else value
    if isinstance(value, (tuple, list)) and value and isinstance(value[0], str):
        return tuple(_URL_IN_TEXT.sub(r"\1", v) if "://" in v else v for v in value)
    return value


def _clean_attributes(attrs: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Redacted attributes, or None when nothing needed redacting."""
    out: dict[str, Any] | None = None
    for key, value in (attrs or {}).items():
        clean = _clean(key, value)
        if clean is not _DROP and clean == value:
            continue
        if out is None:
            out = dict(attrs)  # type: ignore[arg-type]
        if clean is _DROP:
            del out[key]
        else:
            out[key] = clean
    return out


def redact(span: ReadableSpan) -> ReadableSpan:
    """`span`, or a copy without query strings, credential headers or SQL parameters."""
    attrs = _clean_attributes(span.attributes)
    events = None
    for i, event in enumerate(span.events):
        clean = _clean_attributes(event.attributes)
        if clean is not None:
            events = events or list(span.events)
            events[i] = Event(event.name, clean, event.timestamp)
    if attrs is None and events is None:
        return span
    return ReadableSpan(
        name=span.name, context=span.context, parent=span.parent, resource=span.resource,
        attributes=span.attributes if attrs is None else attrs,
        events=span.events if events is None else events, links=span.links, kind=span.kind,
        status=span.status, start_time=span.start_time, end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope)


class ServiceSpanProcessor(SpanProcessor):
    """Names DB spans on start, redacts every span on end, then hands it to `export`."""

    def __init__(self, export: SpanProcessor) -> None:
        self._export = export

    def on_start(self, span: Any, parent_context: Context | None = None) -> None:
        name = QUERY_NAME.get()
        if name is not None:
            attrs = span.attributes or {}
            if "db.system" in attrs or "db.system.name" in attrs:
                span.set_attribute("db.query.name", name)
        self._export.on_start(span, parent_context=parent_context)

    def _on_ending(self, span: Any) -> None:
        self._export._on_ending(span)  # the SDK's own hook, passed through

    def on_end(self, span: ReadableSpan) -> None:
        self._export.on_end(redact(span))

    def shutdown(self) -> None:
        self._export.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._export.force_flush(timeout_millis)
