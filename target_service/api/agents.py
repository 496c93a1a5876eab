"""Agents routes: DB stats plus configuration, degrading instead of failing."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from target_service import schemas
from target_service.deps import AgentsDep, UserDep

router = APIRouter(prefix="/api/v1/agents", tags=["agents"])


@router.get("", response_model=schemas.AgentsPage)
async def list_agents(user: UserDep, agents: AgentsDep) -> schemas.AgentsPage:
    """The agents page; `degraded` says whether any configuration is not live."""
    return await agents.list(user.id)


@router.get("/{agent_id}", response_model=schemas.AgentResponse)
async def get_agent(
    user: UserDep, agents: AgentsDep,
    agent_id: Annotated[int, Path(gt=0, le=2**63 - 1)],
) -> schemas.AgentResponse:
    """One agent; another user's agent is a 404, indistinguishable from a missing one."""
    return await agents.get(user.id, agent_id)
