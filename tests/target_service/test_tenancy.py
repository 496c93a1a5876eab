"""A user never sees another user's rows, on any route, in either profile."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import auth, running_app


def owned_ids(body: dict) -> tuple[set[int], set[int]]:
    """Agent ids and call ids that appear anywhere in a response body."""
    agents: set[int] = set()
    calls: set[int] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("agent_id"), int):
                agents.add(node["agent_id"])
            if isinstance(node.get("call_id"), int):
                calls.add(node["call_id"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(body)
    return agents, calls


@pytest.mark.parametrize("profile", ["optimized", "naive"])
async def test_every_route_is_scoped_to_the_caller(shared_dbs, datasets, profile):
    users = sorted(datasets.manifest["users"], key=lambda u: u["weight"], reverse=True)[:4]
    paths = ["/api/v1/dashboard/overview", "/api/v1/dashboard/analytics", "/api/v1/agents",
             "/api/v1/activity?limit=50"]
    async with running_app(shared_dbs[profile], profile) as (_, client):
        async def check(user: dict, path: str) -> None:
            r = await client.get(path, headers=auth(user["api_key"]))
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["user_id"] == user["user_id"]
            agents, _ = owned_ids(body)
            assert agents <= set(user["agent_ids"]), (path, agents - set(user["agent_ids"]))

        # interleaved, concurrent: a leak through shared state would show here
        await asyncio.gather(*(check(u, p) for _ in range(3) for u in users for p in paths))
        for u in users:
            for agent_id in u["agent_ids"][:2]:
                await check(u, f"/api/v1/agents/{agent_id}")
