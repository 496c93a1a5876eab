"""Agents routes: DB stats plus configuration, degrading instead of failing."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from target_service import schemas
from target_service.api.responses import model_response
from target_service.deps import AgentsDep, TracerDep, UserDep

router = APIRouter(prefix="/api/v1/agents", tags=["agents"])


@router.get("", response_model=schemas.AgentsPage)
async def list_agents(user: UserDep, agents: AgentsDep, tracer: TracerDep) -> Response:
    """The agents page; `degraded` says whether any configuration is not live."""
    return model_response(await agents.list(user.id), tracer)


@router.get("/{agent_id}", response_model=schemas.AgentResponse)
async def get_agent(
    user: UserDep, agents: AgentsDep, tracer: TracerDep,
    agent_id: Annotated[int, Path(gt=0, le=2**63 - 1)],
) -> Response:
    """One agent; another user's agent is a 404, indistinguishable from a missing one."""
    return model_response(await agents.get(user.id, agent_id), tracer)
