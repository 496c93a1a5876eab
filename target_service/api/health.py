"""Liveness, readiness and the Prometheus endpoint."""

from __future__ import annotations

from fastapi import APIRouter, Response

from target_service import schemas
from target_service.deps import ResourcesDep

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
    return schemas.Health(status="ok" if ok else "unavailable", checks=checks)


@router.get("/metrics", include_in_schema=False)
async def metrics(resources: ResourcesDep) -> Response:
    body, content_type = resources.db.metrics.render()
    return Response(body, media_type=content_type)
