"""The fault-injection layer of the ElevenLabs stub (raw ASGI middleware).

It sits in front of the FastAPI routes of :mod:`harness.stubs.elevenlabs` and
executes the :class:`~harness.stubs.elevenlabs.faults.Decision` the fault
engine makes for each ``/v1/*`` request, in this order: concurrency limit
(429 ``concurrent_limit_exceeded``), outage (503), auth (401), then one
random fault (connection reset, hang, 429, 5xx), then latency, then the real
handler. Admin routes pass through untouched.

It is raw ASGI rather than a Starlette middleware because two faults cannot
be expressed as a response: a *connection reset* aborts the TCP connection
(RST) before any byte is sent, and a *hang* must notice when the client gives
up (``http.disconnect``) or when the server shuts down, so hung requests
never keep the process alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
import uuid
from typing import Any

from harness.stubs.elevenlabs.agents import AgentCatalog
from harness.stubs.elevenlabs.faults import Decision, FaultEngine, StubStats, format_retry_after

_AGENT_PREFIX = "/v1/convai/agents/"
_LIST_PATH = "/v1/convai/agents"
LIST_KEY = "__list__"


class StubState:
    """Everything the app shares: catalogue, API key, fault engine, stats."""

    def __init__(self, catalog: AgentCatalog, api_key: str, engine: FaultEngine) -> None:
        self.catalog = catalog
        self.api_key = api_key
        self.engine = engine
        self.stats = StubStats()
        self.shutdown = asyncio.Event()


def error_body(code: str, message: str, type_: str) -> dict[str, Any]:
    """The documented error shape; ``status`` is the legacy twin of ``code``."""
    return {"detail": {"type": type_, "code": code, "status": code, "message": message,
                       "request_id": uuid.uuid4().hex}}


async def _send_json(send: Any, status: int, body: Any,
                     headers: dict[str, str] | None = None) -> None:
    payload = json.dumps(body).encode()
    raw = [(b"content-type", b"application/json"),
           (b"content-length", str(len(payload)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload, "more_body": False})


def _agent_key(path: str) -> tuple[str, str]:
    if path.startswith(_AGENT_PREFIX) and len(path) > len(_AGENT_PREFIX):
        return path[len(_AGENT_PREFIX):].split("/", 1)[0], "get_agent"
    if path.rstrip("/") == _LIST_PATH:
        return LIST_KEY, "list_agents"
    return LIST_KEY, "other"


class FaultInjectionMiddleware:
    """Raw ASGI middleware: it must be able to drop the TCP connection, which
    no response object can express, and to notice a client giving up on a hang."""

    def __init__(self, app: Any, state: StubState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        state = self.state
        agent, endpoint = _agent_key(scope["path"])
        in_flight = state.engine.enter()
        state.stats.record_start(agent, endpoint, in_flight)
        sent_status: list[int | None] = [None]

        async def tracking_send(message: dict) -> None:
            if message["type"] == "http.response.start":
                sent_status[0] = message["status"]
            await send(message)

        fault = "none"
        try:
            decision = state.engine.decide(agent, in_flight)
            if decision.kind in ("concurrency_limit", "outage"):
                fault = decision.kind
                await self._respond_fault(decision, tracking_send, in_flight)
                return
            headers = dict(scope.get("headers") or [])
            if headers.get(b"xi-api-key", b"").decode("latin-1") != state.api_key:
                await _send_json(tracking_send, 401, error_body(
                    "invalid_api_key", "Invalid API key", "authentication_error"))
                return
            fault = decision.kind
            if decision.kind == "reset":
                await self._reset(send)
                return
            if decision.kind == "hang" and not await self._hang(decision.hang_s, receive):
                if state.shutdown.is_set():  # the client is still there: tell it why
                    await _send_json(tracking_send, 503, error_body(
                        "service_unavailable", "Shutting down", "service_unavailable"))
                return
            if decision.delay_s > 0:
                await asyncio.sleep(decision.delay_s)
            if decision.kind in ("rate_limit", "error"):
                await self._respond_fault(decision, tracking_send, in_flight)
                return
            await self.app(scope, receive, tracking_send)
        finally:
            state.engine.leave()
            state.stats.record_end(agent, sent_status[0], fault)

    async def _respond_fault(self, d: Decision, send: Any, in_flight: int) -> None:
        headers = {"retry-after": format_retry_after(d.retry_after_s or 0)}
        if d.kind in ("rate_limit", "concurrency_limit"):
            if d.rate_limit_kind == "concurrent_limit_exceeded":
                # A random 429 of this kind has no configured limit: report one
                # just under what is in flight, as upstream would.
                limit = d.max_concurrency or max(in_flight - 1, 1)
                message = "Too many concurrent requests for your subscription."
                headers["current-concurrent-requests"] = str(in_flight)
                headers["maximum-concurrent-requests"] = str(limit)
            else:
                message = "Too many requests, please slow down."
            await _send_json(send, 429, error_body(d.rate_limit_kind or "rate_limit_exceeded",
                                                   message, "rate_limit_error"), headers)
        elif d.kind == "outage":
            await _send_json(send, 503, error_body(
                "service_unavailable", "The service is temporarily unavailable.",
                "service_unavailable"), headers)
        else:
            status = d.status or 500
            code = {500: "internal_server_error", 502: "bad_gateway",
                    503: "service_unavailable"}.get(status, "internal_server_error")
            await _send_json(send, status, error_body(code, "Upstream error (injected).",
                                                      "internal_server_error"))

    async def _reset(self, send: Any) -> None:
        """Abort the connection with a TCP RST (SO_LINGER 0) before any byte is sent.

        uvicorn passes the protocol cycle's bound ``send``; its ``transport`` is
        the connection. Without it, fall back to a truncated response, which
        clients also see as a transport error.
        """
        transport = getattr(getattr(send, "__self__", None), "transport", None)
        if transport is not None:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                    struct.pack("ii", 1, 0))
            transport.abort()
            for _ in range(3):  # let connection_lost run so uvicorn sends nothing
                await asyncio.sleep(0)
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"1000")]})
        await send({"type": "http.response.body", "body": b"{", "more_body": True})

    async def _hang(self, seconds: float, receive: Any) -> bool:
        """Sleep up to ``seconds``; False if the client left or shutdown began."""

        async def client_gone() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        waiters = [asyncio.ensure_future(client_gone()),
                   asyncio.ensure_future(self.state.shutdown.wait())]
        try:
            done, _ = await asyncio.wait(waiters, timeout=seconds,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
        return not done


