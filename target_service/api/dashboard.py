"""Dashboard routes: thin, all logic lives in services/dashboard.py."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Response

from target_service import schemas
from target_service.api.responses import json_response
from target_service.deps import DashboardDep, UserDep

router = APIRouter(prefix="/api/v1/dashboard", tags=["dashboard"])


@router.get("/overview", response_model=schemas.Overview)
async def overview(user: UserDep, dashboard: DashboardDep) -> Response:
    """30-day KPIs, agents with their stats, and recent activity."""
    return json_response(*await dashboard.overview_body(user.id))


@router.get("/analytics", response_model=schemas.Analytics)
async def analytics(
    user: UserDep,
    dashboard: DashboardDep,
    from_date: Annotated[date | None, Query(alias="from")] = None,
    to_date: Annotated[date | None, Query(alias="to")] = None,
    granularity: schemas.Granularity = "day",
) -> Response:
    """Charts over a date range (inclusive, UTC days; at most `max_range_days`)."""
    start, end = dashboard.validate_range(from_date, to_date)
    return json_response(*await dashboard.analytics_body(user.id, start, end, granularity))
