"""A local stand-in for the ElevenLabs Conversational AI API, with fault injection.

Run it as its own process (the harness and the tests do)::

    python -m harness.stubs.elevenlabs --manifest dataset.json --port 0 \\
        --host 127.0.0.1 --api-key KEY --faults flaky [--latency-ms 100] \\
        [--error-rate 0.2] [--fault-seed 7] [--faults-json '{"per_agent": ...}']

Faults come from a preset (``healthy``, ``slow``, ``flaky``, ``rate_limited``,
``concurrency_limited``, ``outage``, ``hanging``, ``resetting``; see
:data:`harness.stubs.elevenlabs.faults.PRESETS`), overlaid by
``--faults-json`` (any :class:`FaultConfig` fields, e.g. ``per_agent``), then by
the individual flags (``--help`` lists them). A bad flag, preset or manifest
exits with code 2 and one line on stderr.

Once it accepts connections it prints exactly one line on stdout,
``{"stub_url": "http://127.0.0.1:PORT"}``, and nothing else goes to stdout
(logs go to stderr). SIGTERM/SIGINT stop it; requests that are "hanging" are
released at shutdown so it exits within about a second.

Upstream API served (ids are the manifest's ``elevenlabs_agent_id`` values):

* ``GET /v1/convai/agents/{agent_id}`` - the agent's configuration
  (``GetAgentResponseModel`` shape); 404 ``{"detail": {...}}`` when unknown.
* ``GET /v1/convai/agents?page_size=&cursor=&search=`` -
  ``{"agents": [...], "next_cursor": ..., "has_more": ...}``;
  ``page_size`` is 1..100 (422 otherwise, FastAPI validation body).
* Auth: ``xi-api-key`` header; missing or wrong gives 401
  ``{"detail": {"status": "invalid_api_key", "message": ...}}``.

Error bodies follow the documented format: ``{"detail": {"type", "code",
"status" (legacy, equal to code), "message", "request_id"}}``.

Admin API (no auth, never faulted):

* ``GET /__admin/faults`` - the live :class:`FaultConfig` (JSON).
* ``POST /__admin/faults`` - replace it. Body: a full config, or
  ``{"preset": "flaky"}``, or a preset plus fields overriding it.
* ``GET /__admin/stats`` / ``POST /__admin/stats/reset`` - counts of upstream
  requests: ``total``, ``by_agent``, ``by_status``, ``by_fault``,
  ``by_agent_status``, ``by_endpoint``, ``in_flight``, ``max_in_flight``.
  Requests to the list endpoint count under agent ``"__list__"``.
* ``GET /__admin/health`` - liveness.

Request pipeline for ``/v1/*``: concurrency limit (429
``concurrent_limit_exceeded`` with ``current-concurrent-requests`` /
``maximum-concurrent-requests`` / ``Retry-After``), outage (503), auth (401),
then one random fault (connection reset, hang, 429, 5xx), then latency, then
the real handler (see :mod:`harness.stubs.elevenlabs.middleware`). The
process-side helpers (``start_stub``, ``StubProcess``,
``StubAdmin``) live in :mod:`harness.stubs.elevenlabs.process` and are
exported by the package.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import socket
import sys
from typing import Any

import uvicorn
from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from harness.stubs.elevenlabs.agents import AgentCatalog, decode_cursor
from harness.stubs.elevenlabs.faults import PRESETS, FaultConfig, FaultEngine, build_config
from harness.stubs.elevenlabs.middleware import (
    FaultInjectionMiddleware,
    StubState,
    error_body,
)

log = logging.getLogger("harness.stubs.elevenlabs")


def create_app(state: StubState) -> Any:
    """The ASGI app: FastAPI routes wrapped in the fault-injection middleware."""
    app = FastAPI(title="ElevenLabs stub", docs_url=None, redoc_url=None,
                  openapi_url=None)

    @app.get("/v1/convai/agents/{agent_id}")
    async def get_agent(agent_id: str) -> JSONResponse:
        agent = state.catalog.get(agent_id)
        if agent is None:
            return JSONResponse(status_code=404, content=error_body(
                "agent_not_found", f"Agent with id {agent_id} was not found.",
                "not_found_error"))
        return JSONResponse(agent.config)

    @app.get("/v1/convai/agents")
    async def list_agents(page_size: int = Query(30, ge=1, le=100),
                          cursor: str | None = None,
                          search: str | None = None) -> JSONResponse:
        if cursor:
            try:
                decode_cursor(cursor)
            except ValueError:
                return JSONResponse(status_code=422, content=error_body(
                    "invalid_parameters", "Invalid cursor.", "validation_error"))
        return JSONResponse(state.catalog.page(page_size=page_size, cursor=cursor,
                                               search=search))

    @app.get("/__admin/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "agents": len(state.catalog)}

    @app.get("/__admin/faults")
    async def get_faults() -> dict[str, Any]:
        return state.engine.config.model_dump(mode="json")

    @app.post("/__admin/faults")
    async def set_faults(request: Request) -> JSONResponse:
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise ValueError("body must be a JSON object")  # noqa: TRY004 - a 422, as the others
            preset = body.pop("preset", None)
            config = build_config(preset, body)
        except (ValueError, KeyError, ValidationError) as exc:
            return JSONResponse(status_code=422, content={"detail": str(exc)})
        state.engine.apply(config)
        log.info("fault config replaced: %s", config.model_dump_json(exclude_defaults=True))
        return JSONResponse(config.model_dump(mode="json"))

    @app.get("/__admin/stats")
    async def get_stats() -> dict[str, Any]:
        return state.stats.snapshot(state.engine.in_flight)

    @app.post("/__admin/stats/reset")
    async def reset_stats() -> dict[str, Any]:
        state.stats.reset()
        return state.stats.snapshot(state.engine.in_flight)

    return FaultInjectionMiddleware(app, state)


class _StubServer(uvicorn.Server):
    """uvicorn server that also releases hanging requests when asked to exit."""

    def __init__(self, config: uvicorn.Config, state: StubState) -> None:
        super().__init__(config)
        self._state = state
        self._loop: asyncio.AbstractEventLoop | None = None

    def handle_exit(self, sig: int, frame: Any) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._state.shutdown.set)
        super().handle_exit(sig, frame)
        # uvicorn re-raises captured signals after shutdown, which would make
        # a clean stop look like death by signal (-15); exit 0 instead.
        captured = getattr(self, "_captured_signals", None)
        if isinstance(captured, list):
            captured.clear()

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets=sockets)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m harness.stubs.elevenlabs",
                                description="Local ElevenLabs API stub with fault injection.")
    p.add_argument("--manifest", required=True, help="dataset manifest JSON")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--api-key", default=os.environ.get("STUB_API_KEY"),
                   help="expected xi-api-key value (default: $STUB_API_KEY; prefer the "
                        "variable, arguments are visible to every user in `ps`)")
    p.add_argument("--faults", default="healthy", choices=sorted(PRESETS), help="preset")
    p.add_argument("--faults-json", help="JSON object of FaultConfig fields over the preset")
    p.add_argument("--fault-seed", type=int, default=0)
    p.add_argument("--latency-ms", type=float, help="fixed latency")
    p.add_argument("--latency-median-ms", type=float, help="lognormal median")
    p.add_argument("--latency-p99-ms", type=float, help="lognormal p99")
    p.add_argument("--error-rate", type=float)
    p.add_argument("--error-statuses", help="comma-separated subset of 500,502,503")
    p.add_argument("--rate-limit-rate", type=float)
    p.add_argument("--rate-limit-kind",
                   choices=["rate_limit_exceeded", "concurrent_limit_exceeded"])
    p.add_argument("--retry-after", type=float, help="Retry-After seconds")
    p.add_argument("--max-concurrency", type=int)
    p.add_argument("--hang-rate", type=float)
    p.add_argument("--hang-seconds", type=float)
    p.add_argument("--reset-rate", type=float)
    p.add_argument("--outage-after", type=float, help="outage start, seconds after start")
    p.add_argument("--outage-for", type=float, help="outage duration in seconds")
    p.add_argument("--graceful-timeout", type=float, default=1.0)
    p.add_argument("--loop", default="auto", choices=["auto", "asyncio", "uvloop"])
    p.add_argument("--log-level", default="warning")
    return p.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> FaultConfig:
    """Preset, then ``--faults-json``, then the individual flags (last wins)."""
    overrides: dict[str, Any] = json.loads(args.faults_json) if args.faults_json else {}
    if args.latency_ms is not None:
        overrides["latency"] = {"kind": "fixed", "fixed_ms": args.latency_ms}
    if args.latency_median_ms is not None or args.latency_p99_ms is not None:
        median = args.latency_median_ms or args.latency_p99_ms
        overrides["latency"] = {"kind": "lognormal", "median_ms": median,
                                "p99_ms": args.latency_p99_ms or median * 5}
    simple = {"error_rate": args.error_rate, "rate_limit_rate": args.rate_limit_rate,
              "rate_limit_kind": args.rate_limit_kind, "retry_after_s": args.retry_after,
              "max_concurrency": args.max_concurrency, "hang_rate": args.hang_rate,
              "hang_s": args.hang_seconds, "reset_rate": args.reset_rate}
    overrides.update({k: v for k, v in simple.items() if v is not None})
    if args.error_statuses:
        overrides["error_statuses"] = [int(s) for s in args.error_statuses.split(",")]
    if args.outage_after is not None or args.outage_for is not None:
        overrides["outage"] = {"start_after_s": args.outage_after or 0.0,
                               "duration_s": args.outage_for}
    return build_config(args.faults, overrides)


def _uvicorn_config(args: argparse.Namespace, app: Any) -> uvicorn.Config:
    return uvicorn.Config(app, host=args.host, port=args.port, loop=args.loop,
                          log_config=None, access_log=False, log_level=args.log_level,
                          lifespan="off", timeout_graceful_shutdown=args.graceful_timeout,
                          timeout_keep_alive=30, backlog=2048)


async def _serve(args: argparse.Namespace, state: StubState, uv_config: uvicorn.Config) -> None:
    server = _StubServer(uv_config, state)
    serve_task = asyncio.create_task(server.serve())
    while not server.started:
        if serve_task.done():
            await serve_task  # re-raise the startup failure
            raise SystemExit(3)
        await asyncio.sleep(0.01)
    # With --port 0 the kernel picked the port; read it back from the listener.
    port = server.servers[0].sockets[0].getsockname()[1]
    host = f"[{args.host}]" if ":" in args.host else args.host
    sys.stdout.write(json.dumps({"stub_url": f"http://{host}:{port}"}) + "\n")
    sys.stdout.flush()
    log.warning("ElevenLabs stub serving %d agents on %s:%d (faults=%s, seed=%d)",
                len(state.catalog), args.host, port, args.faults, args.fault_seed)
    await serve_task


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    if not args.api_key:
        print("elevenlabs stub: configuration error: --api-key or STUB_API_KEY is required",
              file=sys.stderr)
        return 2
    logging.basicConfig(stream=sys.stderr, level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = config_from_args(args)
        catalog = AgentCatalog.from_manifest(args.manifest)
    except (KeyError, ValueError, ValidationError, OSError) as exc:
        print(f"elevenlabs stub: configuration error: {exc}", file=sys.stderr)
        return 2
    state = StubState(catalog, args.api_key, FaultEngine(config, seed=args.fault_seed))
    uv_config = _uvicorn_config(args, create_app(state))
    # Same event loop choice as `uvicorn.run` (uvloop when installed).
    with asyncio.Runner(loop_factory=uv_config.get_loop_factory()) as runner:
        runner.run(_serve(args, state, uv_config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
