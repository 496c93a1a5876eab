"""Dependency aliases: resources built in the lifespan, injected per request.

Routers declare what they need with these `Annotated` aliases and never reach
for globals; tests can override any of them through `app.dependency_overrides`.

Every dependency is `async def`, even those that only read an attribute: FastAPI
runs a plain `def` dependency in the threadpool (a thread hand-off and a GIL
round trip per call, several per request), which showed as a fifth of the
service's busy CPU in a py-spy profile of the overview (docs/tracing-notes.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from opentelemetry.trace import Tracer

from target_service.cache.memory import MemoryCache, user_tag
from target_service.db.queries import users as q
from target_service.db.seed_data import hash_api_key
from target_service.errors import Unauthorized
from target_service.resources import Resources
from target_service.services.activity import ActivityService
from target_service.services.agents import AgentsService
from target_service.services.dashboard import DashboardService
from target_service.settings import Settings
from target_service.tracing import lookup_event, recording_span


async def get_resources(request: Request) -> Resources:
    return request.app.state.resources


ResourcesDep = Annotated[Resources, Depends(get_resources)]


async def get_settings(resources: ResourcesDep) -> Settings:
    return resources.settings


async def get_dashboard(resources: ResourcesDep) -> DashboardService:
    return resources.dashboard


async def get_agents(resources: ResourcesDep) -> AgentsService:
    return resources.agents


async def get_activity(resources: ResourcesDep) -> ActivityService:
    return resources.activity


async def get_tracer(resources: ResourcesDep) -> Tracer | None:
    """The service's tracer (None with tracing off), for the `serialize` spans of routes."""
    return resources.tracing.tracer


SettingsDep = Annotated[Settings, Depends(get_settings)]
TracerDep = Annotated[Tracer | None, Depends(get_tracer)]
DashboardDep = Annotated[DashboardService, Depends(get_dashboard)]
AgentsDep = Annotated[AgentsService, Depends(get_agents)]
ActivityDep = Annotated[ActivityService, Depends(get_activity)]

_bearer = HTTPBearer(auto_error=False)


@dataclass(frozen=True)
class CurrentUser:
    """The authenticated caller; every query is scoped to `id`."""

    id: int
    name: str


async def get_current_user(
    resources: ResourcesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> CurrentUser:
    """Resolve `Authorization: Bearer <key>` to a user; 401 otherwise.

    Cached per key hash (the `auth` cache, 5 min) and tagged with the user, so a
    changed key, a renamed or a removed user is forgotten in every process as soon as
    `api_key_changed` arrives (migration 0105; `InvalidationListener.on_key_changed`).
    """
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthorized("missing bearer API key")
    key_hash = hash_api_key(credentials.credentials)
    cache = resources.caches.auth
    if cache is not None and (known := _cached_user(cache, key_hash)) is not None:
        return known
    # taken before the query: a key changed (api_key_changed evicts the user's tag)
    # while this lookup ran is not cached with its old owner
    generation = None if cache is None else cache.generation()
    row = await resources.db.fetchrow("auth_user_by_key", q.USER_BY_KEY_HASH, key_hash)
    if row is None:
        raise Unauthorized("invalid API key")
    user = CurrentUser(id=row["id"], name=row["name"])
    if cache is not None:  # only hits are remembered: a bad key is asked each time
        cache.set(key_hash, user, tags=(user_tag(user.id),), generation=generation)
    return user


def _cached_user(cache: MemoryCache, key_hash: bytes) -> CurrentUser | None:
    """The auth cache's user for a key hash; traced as the event `cache.lookup auth` on
    the request's span (never the key: `tracing.lookup_event`)."""
    if cache.tracer is None:
        return cache.get(key_hash)
    found = cache.lookup(key_hash)
    if (span := recording_span()) is not None:
        lookup_event(span, cache.name, {
            "cache.name": cache.name,
            "cache.result": "miss" if found is None else found[1].lower()})
    return None if found is None else found[0]


UserDep = Annotated[CurrentUser, Depends(get_current_user)]
