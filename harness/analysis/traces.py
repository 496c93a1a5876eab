"""Where a traced request's time went, from the service's spans (pure: no I/O).

Input: the OTLP-JSON batches of `spans.jsonl` (one `{"resourceSpans": [...]}`
per line; `harness.run.record` reads the file and hands each line's object to
:func:`parse_batch`) and the client's kept trace samples (`ClientTraces`).
Output: the `traces` section of `result.json` (`TraceSummary`).

A request's trace is rooted at the service's server span (kind 2; its parent is
the client's span, which is not in the file). Every span under it falls into
one category:

* `db`: client spans with a `db.system` (asyncpg: `db.system=postgresql`);
* `pool_wait`: `db.pool.acquire` (the service makes one only for an acquire that
  waited: one served at once from an idle connection stays in its parent's time);
* `cache`: `cache.*` (lookups that missed, loads, single-flight waits; a lookup
  answered from memory is an event on its parent, its microseconds in the parent's
  category);
* `upstream`: other client spans (the ElevenLabs httpx client) and `elevenlabs.*`
  (attempts, retry back-off, breaker rejections);
* `serialization`: spans named `serialize*` or `render*`, and events of those
  names carrying `serialization.duration_ns` (the service records encoding a
  response as such an event on the span it happened in: a span of its own cost
  more than most encodings; the event's interval, ending at its timestamp, is
  read as a child span); a cached body is encoded once, in the cache load that
  stores it; a run without any lists it in `no_spans` and its time is inside
  `app`;
* `app`: the rest, the server span's own time included.

Time is *exclusive*, over wall-clock time: each instant of the server span goes
to the spans running at that instant that have no running child (a `cache.load`
holding a DB query gives that instant to `db`, not to `cache`). When several
such spans run in parallel (the analytics charts' four queries, the agents page's
ElevenLabs fetches), the instant is split evenly among them, so a trace's
categories add up exactly to its server duration and shares add up to 1.
Spans are clipped to their server span; a span whose parent is not in the file
(dropped, or from a worker that died) is counted under the server span.

The client's latency of the same request minus the server span's duration is
what the request spent outside the service's handler: the network, the
server's accept queue and event loop, and the generator itself.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from harness.model.client import ClientTraces, TraceSample
from harness.model.trace_summary import (
    TRACE_CATEGORIES,
    ClientServerGap,
    EndpointTraces,
    SlowTrace,
    TimeBreakdown,
    TraceSummary,
)

SERVER, CLIENT = 2, 3
_KINDS = {"SPAN_KIND_INTERNAL": 1, "SPAN_KIND_SERVER": 2, "SPAN_KIND_CLIENT": 3,
          "SPAN_KIND_PRODUCER": 4, "SPAN_KIND_CONSUMER": 5}
DURATION_KEY = "serialization.duration_ns"
"""The attribute of a `serialize <Model>` event holding how long the encoding took."""
NO_SPAN_NOTE = ("serialization: no serialization span in these traces, so encoding time is "
                "counted in app")


@dataclass(frozen=True, slots=True)
class Span:
    """What the summary needs of one span (times in ns since the epoch)."""

    trace_id: str
    span_id: str
    parent_id: str | None
    start: int
    end: int
    category: str
    kind: int = 1
    endpoint: str | None = None
    """`METHOD route` of a server span."""
    name: str = ""


# ---- parsing ----------------------------------------------------------------------------

def _value(v: Mapping) -> object:
    for key in ("stringValue", "intValue", "boolValue", "doubleValue"):
        if key in v:
            return v[key]
    return None


def _attributes(span: Mapping) -> dict[str, object]:
    out = {}
    for a in span.get("attributes") or ():
        if isinstance(a, Mapping) and "key" in a:
            out[a["key"]] = _value(a.get("value") or {})
    return out


def _kind(value: object) -> int:
    if isinstance(value, str):
        return _KINDS.get(value, int(value) if value.isdigit() else 1)
    return int(value or 1)


def category(name: str, kind: int, attrs: Mapping[str, object]) -> str:
    """The category of one span (see the module's docstring)."""
    if kind == CLIENT and ("db.system" in attrs or "db.system.name" in attrs):
        return "db"
    if name == "db.pool.acquire":
        return "pool_wait"
    if name.startswith("cache."):
        return "cache"
    if kind == CLIENT or name.startswith("elevenlabs."):
        return "upstream"
    if name.startswith(("serialize", "render")):
        return "serialization"
    return "app"


def parse_span(raw: Mapping) -> Span:
    """One OTLP-JSON span (ids hex, times in ns as strings or numbers)."""
    attrs = _attributes(raw)
    kind = _kind(raw.get("kind"))
    name = str(raw.get("name") or "")
    endpoint = None
    if kind == SERVER:
        method = attrs.get("http.request.method") or attrs.get("http.method")
        route = attrs.get("http.route")
        endpoint = f"{str(method).upper()} {route}" if method and route else name
    start = int(raw.get("startTimeUnixNano") or 0)
    end = max(start, int(raw.get("endTimeUnixNano") or start))
    return Span(trace_id=str(raw["traceId"]).lower(), span_id=str(raw["spanId"]).lower(),
                parent_id=str(raw.get("parentSpanId") or "").lower() or None,
                start=start, end=end, category=category(name, kind, attrs), kind=kind,
                endpoint=endpoint, name=name)


def parse_batch(doc: Mapping) -> list[Span]:
    """Every span of one exported batch (one line of `spans.jsonl`); ValueError when the
    object is not OTLP-JSON."""
    if not isinstance(doc, Mapping) or not isinstance(doc.get("resourceSpans"), list):
        raise ValueError("not an OTLP-JSON batch (no resourceSpans)")  # noqa: TRY004 - one
        # error for every unreadable line, as for malformed JSON
    try:
        out = []
        for rs in doc["resourceSpans"]:
            for ss in rs.get("scopeSpans") or ():
                for raw in ss.get("spans") or ():
                    span = parse_span(raw)
                    out.append(span)
                    out.extend(timed_events(span, raw.get("events") or ()))
        return out
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise ValueError(f"malformed span: {exc!r}") from exc


def timed_events(span: Span, events: Iterable[Mapping]) -> list[Span]:
    """The `serialize*`/`render*` events of `span` that carry `serialization.duration_ns`,
    as child spans ending at the event's time (ids `<span id>.<n>`: never a real id)."""
    out = []
    for i, event in enumerate(events):
        name = str(event.get("name") or "")
        if not name.startswith(("serialize", "render")):
            continue
        duration = _attributes(event).get(DURATION_KEY)
        if duration is None:
            continue
        end = int(event.get("timeUnixNano") or 0)
        start = end - max(0, int(duration))
        out.append(Span(trace_id=span.trace_id, span_id=f"{span.span_id}.{i}",
                        parent_id=span.span_id, start=start, end=end,
                        category="serialization", name=name))
    return out


# ---- one trace --------------------------------------------------------------------------

def breakdown_ns(root: Span, spans: Iterable[Span]) -> dict[str, float]:
    """Nanoseconds of `root`'s duration per category (they add up to its duration).

    `spans` are the root's descendants, each with its parent in `spans` or the root
    (others count as the root's children). A sweep over the span boundaries: between
    two, the running spans without a running child share the time evenly."""
    lo, hi = root.start, root.end
    ids = {root.span_id}
    members = [root]
    for s in spans:
        if s.span_id not in ids and s is not root:
            ids.add(s.span_id)
            members.append(s)
    parent = {s.span_id: (s.parent_id if s.parent_id in ids else root.span_id)
              for s in members if s is not root}
    events: list[tuple[int, int, Span]] = []  # (time, 0 = end / 1 = start, span)
    for s in members:
        start, end = max(s.start, lo), min(s.end, hi)
        if end > start:
            events.append((start, 1, s))
            events.append((end, 0, s))
    events.sort(key=lambda e: (e[0], e[1]))
    out = dict.fromkeys(TRACE_CATEGORIES, 0.0)
    running_children: dict[str, int] = {}
    running: set[str] = set()
    frontier: dict[str, int] = {}  # category -> running spans without a running child
    by_id = {s.span_id: s for s in members}
    last = lo

    def leave(span_id: str) -> None:
        c = by_id[span_id].category
        frontier[c] -= 1

    def enter(span_id: str) -> None:
        c = by_id[span_id].category
        frontier[c] = frontier.get(c, 0) + 1

    for t, is_start, s in events:
        if t > last:
            n = sum(frontier.values())
            if n:
                for c, k in frontier.items():
                    if k:
                        out[c] += (t - last) * k / n
            last = t
        p = parent.get(s.span_id)
        if is_start:
            running.add(s.span_id)
            if running_children.get(s.span_id, 0) == 0:
                enter(s.span_id)
            if p is not None:
                running_children[p] = running_children.get(p, 0) + 1
                if running_children[p] == 1 and p in running:
                    leave(p)
        else:
            running.discard(s.span_id)
            if running_children.get(s.span_id, 0) == 0:
                leave(s.span_id)
            if p is not None:
                running_children[p] -= 1
                if running_children[p] == 0 and p in running:
                    enter(p)
    return out


@dataclass
class _Trace:
    root: Span
    spans: list[Span]

    @property
    def server_ms(self) -> float:
        return (self.root.end - self.root.start) / 1e6

    def breakdown_ms(self) -> dict[str, float]:
        return {c: v / 1e6 for c, v in breakdown_ns(self.root, self.spans).items()}


def request_traces(spans: Iterable[Span]) -> tuple[dict[str, _Trace], int]:
    """Trace id -> its request trace (rooted at a server span whose parent is not in the
    file), and how many traces have no server span (background work: jobs, refreshes).
    A trace with several such server spans keeps the first (the service calls no one
    of its own routes, so there is one)."""
    by_trace: dict[str, list[Span]] = {}
    for s in spans:
        by_trace.setdefault(s.trace_id, []).append(s)
    out: dict[str, _Trace] = {}
    background = 0
    for trace_id, members in by_trace.items():
        ids = {s.span_id for s in members}
        roots = sorted((s for s in members if s.kind == SERVER and s.parent_id not in ids),
                       key=lambda s: s.start)
        if not roots:
            background += 1
            continue
        root = roots[0]
        children: dict[str | None, list[Span]] = {}
        for s in members:
            if s is not root:
                parent = s.parent_id if s.parent_id in ids else root.span_id
                children.setdefault(parent, []).append(s)
        under, todo = [], [root.span_id]
        while todo:
            for child in children.pop(todo.pop(), ()):
                if child.kind == SERVER and child.parent_id not in ids:
                    continue  # another root (not expected)
                under.append(child)
                todo.append(child.span_id)
        out[trace_id] = _Trace(root, under)
    return out, background


# ---- the summary ------------------------------------------------------------------------

def _rounded(values: Mapping[str, float], digits: int = 3) -> TimeBreakdown:
    return TimeBreakdown(**{c: round(values.get(c, 0.0), digits) for c in TRACE_CATEGORIES})


def _shares(totals: Mapping[str, float]) -> TimeBreakdown:
    whole = sum(totals.values())
    return TimeBreakdown(**{c: round(totals.get(c, 0.0) / whole, 4) if whole else 0.0
                            for c in TRACE_CATEGORIES})


def _percentile(sorted_values: list[float], pct: float) -> float | None:
    """Nearest rank."""
    if not sorted_values:
        return None
    k = max(0, min(len(sorted_values) - 1, -(-len(sorted_values) * pct // 100) - 1))
    return round(sorted_values[int(k)], 3)


def _slow(sample: TraceSample | None, trace: _Trace | None) -> SlowTrace:
    root = trace.root if trace else None
    server = round(trace.server_ms, 3) if trace else None
    client = sample.latency_ms if sample else None
    return SlowTrace(
        trace_id=sample.trace_id if sample else root.trace_id,  # type: ignore[union-attr]
        t=sample.t if sample else root.start / 1e9,  # type: ignore[union-attr]
        client_ms=client, failure=sample.failure if sample else None, server_ms=server,
        network_queue_ms=round(client - server, 3) if client is not None
        and server is not None else None,
        spans=1 + len(trace.spans) if trace else 0,
        breakdown_ms=_rounded(trace.breakdown_ms()) if trace else None)


def summarize(spans: Iterable[Span], client: ClientTraces | None,
              traced: Mapping[str, int] | None = None,
              window: tuple[float | None, float | None] = (None, None),
              spans_file: str = "spans.jsonl", malformed_lines: int = 0,
              slowest_n: int = 5) -> TraceSummary:
    """The `traces` section.

    `client`: the plugin's kept samples (None: the run's client kept none, then the
    slowest traces are chosen by server duration); `traced`: per endpoint the
    requests the client sent sampled in the measured window; `window`: the measured
    window (epoch seconds) the shares cover, by server span start."""
    spans = list(spans)
    traces, background = request_traces(spans)
    lo, hi = window
    in_window = [tr for tr in traces.values()
                 if (lo is None or tr.root.start / 1e9 >= lo)
                 and (hi is None or tr.root.start / 1e9 < hi)]
    totals = dict.fromkeys(TRACE_CATEGORIES, 0.0)
    per_endpoint: dict[str, dict[str, float]] = {}
    counts: dict[str, int] = {}
    for tr in in_window:
        key = tr.root.endpoint or tr.root.name
        b = tr.breakdown_ms()
        acc = per_endpoint.setdefault(key, dict.fromkeys(TRACE_CATEGORIES, 0.0))
        for c, v in b.items():
            acc[c] += v
            totals[c] += v
        counts[key] = counts.get(key, 0) + 1

    endpoints: dict[str, EndpointTraces] = {}
    kept: dict[str, list[TraceSample]] = dict(client.slowest) if client else {}
    keys = sorted(set(per_endpoint) | set(kept) | set(traced or {}))
    for key in keys:
        if client is not None:
            slowest = [_slow(s, traces.get(s.trace_id)) for s in kept.get(key, [])]
        else:  # no client samples: the slowest by the service's own duration
            mine = [tr for tr in in_window if (tr.root.endpoint or tr.root.name) == key]
            slowest = [_slow(None, tr) for tr in heapq.nlargest(
                slowest_n, mine, key=lambda tr: (tr.root.end - tr.root.start,
                                                 tr.root.trace_id))]
        n = counts.get(key, 0)
        acc = per_endpoint.get(key, dict.fromkeys(TRACE_CATEGORIES, 0.0))
        endpoints[key] = EndpointTraces(
            traced_requests=(traced or {}).get(key, 0), server_traces=n,
            mean_ms=_rounded({c: v / n for c, v in acc.items()} if n else {}),
            shares=_shares(acc), slowest=slowest)

    samples: dict[str, TraceSample] = {}
    if client is not None:
        for s in [*client.reservoir, *(s for v in client.slowest.values() for s in v)]:
            samples[s.trace_id] = s
    gaps = sorted(s.latency_ms - traces[s.trace_id].server_ms
                  for s in samples.values() if s.trace_id in traces)
    unmatched = sorted(tid for tid in samples if tid not in traces)
    seen_categories = {s.category for s in spans}
    no_spans = [c for c in TRACE_CATEGORIES if c != "app" and c not in seen_categories]
    notes = []
    if "serialization" in no_spans:
        notes.append(NO_SPAN_NOTE)
    if unmatched:
        notes.append(f"{len(unmatched)} of {len(samples)} kept client trace ids have no "
                     f"server span in {spans_file} (a failed request, or spans lost)")
    if malformed_lines:
        notes.append(f"{malformed_lines} line(s) of {spans_file} could not be read")
    return TraceSummary(
        sampling=client.sampling if client else None, spans_file=spans_file,
        spans=len(spans), traces=len(in_window), background_traces=background,
        shares=_shares(totals), endpoints=endpoints,
        client_vs_server=ClientServerGap(samples=len(gaps), p50_ms=_percentile(gaps, 50),
                                         p95_ms=_percentile(gaps, 95),
                                         max_ms=round(gaps[-1], 3) if gaps else None),
        unmatched=unmatched[:20], unmatched_count=len(unmatched), no_spans=no_spans,
        malformed_lines=malformed_lines, notes=notes)
