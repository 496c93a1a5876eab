"""Activity feed and the call write path."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from target_service import schemas
from target_service.api.responses import model_response
from target_service.deps import ActivityDep, SettingsDep, TracerDep, UserDep

router = APIRouter(prefix="/api/v1", tags=["activity"])


@router.get("/activity", response_model=schemas.ActivityPage)
async def activity(
    user: UserDep, service: ActivityDep, settings: SettingsDep, tracer: TracerDep,
    limit: Annotated[int, Query(ge=1)] = 20,
    before: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """Recent calls, newest first; pass `next_cursor` as `before` for the next page."""
    page = await service.page(user.id, min(limit, settings.max_page_size), before)
    return model_response(page, tracer)


@router.post("/calls", response_model=schemas.CallCreated, status_code=201)
async def record_call(user: UserDep, service: ActivityDep, tracer: TracerDep,
                      call: schemas.CallCreate) -> Response:
    """Record a call for one of the caller's agents (and optionally leads)."""
    return model_response(await service.record_call(user.id, call), tracer, status_code=201)
