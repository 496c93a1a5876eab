"""Liveness, readiness and the Prometheus endpoint."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response

from target_service import schemas
from target_service.deps import ResourcesDep
from target_service.errors import RETRY_AFTER_S

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=schemas.Health)
async def healthz() -> schemas.Health:
    """The process is up and serving; says nothing about its dependencies."""
    return schemas.Health(status="ok")


@router.get("/readyz", response_model=schemas.Health,
            responses={503: {"model": schemas.Health}})
async def readyz(resources: ResourcesDep, response: Response) -> schemas.Health:
    """Ready when a pooled connection answers and every background task is alive."""
    checks = {"database": await resources.db.ping()}
    for name, check in resources.ready_checks.items():
        checks[name] = bool(check())  # type: ignore[operator]
    ok = all(checks.values())
    if not ok:
        response.status_code = 503
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return schemas.Health(status="ok" if ok else "unavailable", checks=checks)


@router.get("/metrics", include_in_schema=False)
async def metrics(resources: ResourcesDep) -> Response:
    """The exposition, rendered on a worker thread: formatting ~1,200 samples takes
    10-15 ms of pure Python, which on the event loop stalled every request in flight
    at each of the harness's 2-second scrapes; on a thread the interpreter's switch
    interval (5 ms) lets the loop run in between. (The context, and with it the
    `Accept` header the middleware put there, goes with it: `asyncio.to_thread`.)"""
    body, content_type = await asyncio.to_thread(resources.db.metrics.render)
    return Response(body, media_type=content_type)
