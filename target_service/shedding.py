"""Load shedding: past a bound on requests in flight, answer 503 at once instead of queueing.

Why: an overloaded service that accepts every request queues them without
bound (on the pool, on the event loop); every request then waits for all
those before it, latency grows until clients time out, and the work done for
a request its client has given up on is wasted. Past a known concurrency the
service cannot go faster, only slower, so the request beyond it is better
refused quickly: a 503 `{"error": {"code": "overloaded"}}` with `Retry-After`,
which a client (or a load balancer) can retry elsewhere or later. The bound is
per worker process (`Settings.max_in_flight`), on when the `load_shedding`
toggle is (the optimized profile; the naive profile shows the unbounded queue).

A pure ASGI middleware (like `telemetry.RequestMetricsMiddleware`, which wraps
it, so a shed request is still timed and counted as a 503 of its route): no
task or body buffering per request, and a shed costs one route match and one
small JSON body. Liveness, readiness and metrics are never shed: a monitor
must see an overloaded service as alive and say why it sheds.

`Settings.service_floor_ms` (a test knob, off by default) makes every handled request
wait that long inside its slot first, so a test can starve the service by a known
amount: at most `max_in_flight / service_floor_ms` requests a second per worker.
"""

from __future__ import annotations

import asyncio
import json

from prometheus_client import CollectorRegistry, Counter
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from target_service.errors import RETRY_AFTER_S

EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
"""Never shed: a probe or a scrape of an overloaded service must still get through."""

OVERLOADED_BODY = json.dumps({"error": {
    "code": "overloaded",
    "message": "the service is at its limit of requests in flight; retry later"}}).encode()


def shed_counter(registry: CollectorRegistry) -> Counter:
    """`http_requests_shed_total`, registered whether or not shedding is on (a scrape
    shows 0 rather than nothing), once per registry, in `create_app`."""
    return Counter("http_requests_shed", "Requests answered 503 overloaded at once, past "
                   "the limit of requests in flight (Settings.max_in_flight).",
                   registry=registry)


class LoadSheddingMiddleware:
    """Counts requests in flight in this process; past `limit`, answers 503 at once.

    `limit` None: nothing is counted or shed (the naive profile). The count is
    a plain integer: one event loop per process, and the increment and the
    decrement happen around one `await`, so no lock is needed.
    """

    def __init__(self, app: ASGIApp, shed: Counter, limit: int | None,
                 floor_ms: float = 0.0) -> None:
        self.app = app
        self.shed_total = shed
        self.limit = limit
        self.in_flight = 0
        self.floor_s = floor_ms / 1000.0
        """`Settings.service_floor_ms` in seconds (a test knob, 0 by default)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        if self.limit is None:
            await self.handle(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            await self.shed(scope, send)
            return
        self.in_flight += 1
        try:
            await self.handle(scope, receive, send)
        finally:
            self.in_flight -= 1

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The request, after `Settings.service_floor_ms` (a test knob, 0 by default) of
        waiting inside its slot."""
        if self.floor_s > 0:
            await asyncio.sleep(self.floor_s)
        await self.app(scope, receive, send)

    async def shed(self, scope: Scope, send: Send) -> None:
        """The 503, labelled with the route it would have reached (so the server's
        per-route counts still match the clients')."""
        self.shed_total.inc()
        route = matching_route(scope)
        if route is not None:
            scope["route"] = route
        await send({"type": "http.response.start", "status": 503, "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(OVERLOADED_BODY)).encode()),
            (b"retry-after", str(RETRY_AFTER_S).encode())]})
        await send({"type": "http.response.body", "body": OVERLOADED_BODY})


def matching_route(scope: Scope) -> object | None:
    """The app's route a request would be routed to (None: no full match), found the
    way Starlette's router finds it; only a shed request pays for this."""
    app = scope.get("app")
    router = getattr(app, "router", None)
    for route in getattr(router, "routes", ()):
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return route
    return None
