"""Endpoint keys: how one endpoint is named in every document of a run.

An endpoint is `"METHOD /route/{template}"` (the route template, never a
concrete path, so ids and query strings group together). The same key names
the endpoint in `client.json`, `windows.jsonl`, `result.json`, the service's
`http_request_duration_seconds{method, route}` and, as a tag, in the interval
log; these helpers are the one place that turns one form into another.
"""

from __future__ import annotations

from typing import Literal

HistogramKind = Literal["raw", "corrected"]


def endpoint_key(method: str, name: str) -> str:
    """ "METHOD /route" for a request; a bare URL (no `name=` given) loses host and query.

    Whitespace and commas in the name are percent-encoded (and `%` left alone, so a key
    passes through unchanged), so every key has an interval-log tag:
    `name="agents page"` becomes `GET agents%20page`."""
    if "://" in name:  # scheme://host[:port]/path?query#fragment -> /path
        after_host = name.split("://", 1)[1]
        name = "/" + after_host.split("/", 1)[1] if "/" in after_host else "/"
    name = name.split("#", 1)[0].split("?", 1)[0]
    # a user-written request name may hold what an interval-log tag cannot
    name = name.replace(",", "%2C")
    name = "".join("%20" if c == " " else f"%{ord(c):02X}" if c.isspace() else c
                   for c in name)
    return f"{method.upper()} {name}"


def split_endpoint(key: str) -> tuple[str, str]:
    """`"GET /api/v1/agents"` -> `("GET", "/api/v1/agents")`."""
    method, _, route = key.partition(" ")
    return method, route


API_PREFIX = "/api/v1"


def short_label(key: str) -> str:
    """`"GET /api/v1/agents"` -> `"GET /agents"`: a table heading or chart legend, where
    every route sharing the prefix would only make the columns wide."""
    method, route = split_endpoint(key)
    return key if not route else f"{method} {route.removeprefix(API_PREFIX)}"


def interval_tag(key: str, kind: HistogramKind = "raw") -> str:
    """The interval-log tag of an endpoint's histograms: `raw:GET:/api/v1/agents`.

    HdrHistogram log tags may hold neither whitespace nor commas, so the space
    of the key becomes a colon; route templates never contain either.
    """
    method, route = split_endpoint(key)
    if not route or any(c in route for c in " ,\t\n"):
        raise ValueError(f"endpoint {key!r} cannot be an interval-log tag")
    return f"{kind}:{method}:{route}"


def parse_interval_tag(tag: str) -> tuple[str, HistogramKind]:
    """The inverse of `interval_tag`: `(endpoint key, kind)`; ValueError when malformed."""
    kind, sep, rest = tag.partition(":")
    method, sep2, route = rest.partition(":")
    if not (sep and sep2 and method and route) or kind not in ("raw", "corrected"):
        raise ValueError(f"not an endpoint tag: {tag!r}")
    return f"{method} {route}", kind  # type: ignore[return-value]
