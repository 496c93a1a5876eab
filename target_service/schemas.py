"""Request and response models of API v1.

They live at the package root, not in `api/`, because services build them:
dependencies run api -> services -> db/cache/elevenlabs, so a service must
never import from `target_service.api` (tests/target_service/test_layering.py).
This module imports nothing of the service's own.

Declared response models let FastAPI serialize with pydantic-core (fast,
validated) instead of `jsonable_encoder`. Every data response carries
`user_id`, so a client (and the harness) can check it only ever sees its own
tenant's data.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

CallStatus = Literal["completed", "failed", "no_answer", "busy", "voicemail"]
Direction = Literal["inbound", "outbound"]
Granularity = Literal["day", "week", "month"]
ConfigSource = Literal["live", "cache", "database", "unavailable"]


class ErrorBody(BaseModel):
    code: str
    message: str
    details: Any | None = None


class ErrorResponse(BaseModel):
    """The shape of every 4xx/5xx the service produces on purpose."""

    error: ErrorBody


class Kpis(BaseModel):
    window_days: int = 30
    window_start: datetime
    total_calls: int
    completed_calls: int
    success_rate: float
    total_duration_seconds: int
    avg_call_duration_seconds: float
    total_cost: float
    active_agents: int
    last_call_at: datetime | None
    new_leads: int
    qualified_leads: int
    avg_lead_score: float | None
    as_of: datetime
    """When these numbers were computed (the view's refresh time, or now)."""


class AgentStats(BaseModel):
    calls: int
    completed: int
    success_rate: float
    total_duration_seconds: int
    avg_call_duration_seconds: float
    total_cost: float


class AgentSummary(BaseModel):
    agent_id: int
    elevenlabs_agent_id: str
    name: str
    status: str
    stats: AgentStats


class ActivityItem(BaseModel):
    call_id: int
    agent_id: int
    agent_name: str
    lead_id: int | None
    status: str
    direction: str
    duration_seconds: int
    cost: float
    created_at: datetime


class Overview(BaseModel):
    user_id: int
    kpis: Kpis
    agents: list[AgentSummary]
    recent_activity: list[ActivityItem]


class LeadsPoint(BaseModel):
    bucket: date
    leads: int


class QualityBucket(BaseModel):
    bucket: Literal["hot", "warm", "cold", "poor"]
    leads: int


class StatusCount(BaseModel):
    status: str
    calls: int


class HourlyLoad(BaseModel):
    agent_id: int
    hour: int
    calls: int


class Charts(BaseModel):
    leads_over_time: list[LeadsPoint] = []
    lead_quality: list[QualityBucket] = []
    calls_by_status: list[StatusCount] = []
    agent_hourly_load: list[HourlyLoad] = []


class Analytics(BaseModel):
    user_id: int
    from_date: date = Field(serialization_alias="from")
    to_date: date = Field(serialization_alias="to")
    granularity: Granularity
    charts: Charts
    partial: bool
    """True when at least one chart timed out and is returned empty."""
    partial_charts: list[str]


class AgentDetail(BaseModel):
    agent_id: int
    elevenlabs_agent_id: str
    name: str
    status: str
    stats: AgentStats
    config: dict[str, Any] | None
    config_source: ConfigSource
    """live (fetched within the freshness TTL), cache (an older in-memory copy served
    because ElevenLabs failed), database (the stored snapshot) or unavailable."""
    config_cached: bool = False
    config_updated_at: datetime | None


class AgentsPage(BaseModel):
    user_id: int
    agents: list[AgentDetail]
    degraded: bool
    """True when any agent's configuration is not live from ElevenLabs."""
    fallback_count: int


class AgentResponse(BaseModel):
    user_id: int
    agent: AgentDetail
    degraded: bool


class ActivityPage(BaseModel):
    user_id: int
    items: list[ActivityItem]
    next_cursor: str | None


class CallCreate(BaseModel):
    """A call to record. The server stamps `created_at`; clients cannot backdate."""

    model_config = {"extra": "forbid"}

    agent_id: int = Field(gt=0)
    lead_id: int | None = Field(default=None, gt=0)
    status: CallStatus
    direction: Direction
    duration_seconds: int = Field(ge=0, le=86_400)
    cost: float = Field(default=0.0, ge=0, le=10_000)


class CallCreated(BaseModel):
    user_id: int
    call_id: int
    agent_id: int
    lead_id: int | None
    status: CallStatus
    direction: Direction
    duration_seconds: int
    cost: float
    created_at: datetime


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, bool] = {}
