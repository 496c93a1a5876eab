"""A changed API key or a removed user is refused within the freshness bound.

The auth cache keeps a key's user for 5 minutes; the trigger of migration 0105
NOTIFYs `api_key_changed` and the invalidation listener forgets that user's keys.
The change is made on a connection of its own (as an operator or another service
would), so what is tested is the trigger and the feed, not the writing process
evicting its own entries.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg

from target_service.db.seed_data import hash_api_key
from tests.conftest import auth, busiest_user, running_app

ACTIVITY = "/api/v1/activity?limit=1"
FRESHNESS_BOUND_S = 2.0  # README "Caching and freshness"


async def auth_lookups(app) -> float:
    return app.state.metrics.registry.get_sample_value(
        "db_query_duration_seconds_count", {"query": "auth_user_by_key"}) or 0


async def refused_within(c, headers: dict, since: float) -> float:
    """Seconds from `since` until `headers` are answered 401 (fails past 10 s)."""
    while True:
        status = (await c.get(ACTIVITY, headers=headers)).status_code
        if status == 401:
            return time.monotonic() - since
        assert status == 200, status
        assert time.monotonic() - since < 10, "the old key was never refused"
        await asyncio.sleep(0.02)


async def test_a_changed_key_is_refused_within_the_bound_and_the_new_one_works(fresh_db,
                                                                                datasets):
    user = busiest_user(datasets.manifest)
    dsn = await fresh_db("optimized")
    old, new = auth(user["api_key"]), auth("dk_rotated_key_for_the_test")
    async with running_app(dsn, toggles={"warm_cache": False}) as (app, c):
        for _ in range(3):
            assert (await c.get(ACTIVITY, headers=old)).status_code == 200
        assert await auth_lookups(app) == 1  # cached: without the feed it would stay 5 min
        admin = await asyncpg.connect(dsn)
        try:
            await admin.execute("UPDATE users SET api_key_hash = $1 WHERE id = $2",
                                hash_api_key("dk_rotated_key_for_the_test"), user["user_id"])
            lag = await refused_within(c, old, time.monotonic())
        finally:
            await admin.close()
        assert lag < FRESHNESS_BOUND_S
        answer = await c.get(ACTIVITY, headers=new)
        assert answer.status_code == 200 and answer.json()["user_id"] == user["user_id"]


async def test_a_removed_user_is_refused_within_the_bound(fresh_db):
    dsn = await fresh_db("optimized")
    admin = await asyncpg.connect(dsn)
    try:
        user_id = await admin.fetchval(
            "INSERT INTO users (email, name, api_key_hash) VALUES ($1, $2, $3) RETURNING id",
            "leaving@example.test", "Leaving", hash_api_key("dk_leaving_user_key"))
        headers = auth("dk_leaving_user_key")
        async with running_app(dsn, toggles={"warm_cache": False}) as (app, c):
            for _ in range(3):
                answer = await c.get(ACTIVITY, headers=headers)
                assert answer.status_code == 200 and answer.json()["user_id"] == user_id
            assert await auth_lookups(app) == 1
            await admin.execute("DELETE FROM users WHERE id = $1", user_id)
            lag = await refused_within(c, headers, time.monotonic())
    finally:
        await admin.close()
    assert lag < FRESHNESS_BOUND_S


async def test_another_users_change_leaves_this_users_key_cached(fresh_db, datasets):
    """The eviction is per user: one rotation does not cost everyone a lookup."""
    ranked = sorted(datasets.manifest["users"], key=lambda u: u["weight"], reverse=True)
    kept, rotated = ranked[0], ranked[1]
    dsn = await fresh_db("optimized")
    async with running_app(dsn, toggles={"warm_cache": False}) as (app, c):
        for u in (kept, rotated):
            assert (await c.get(ACTIVITY, headers=auth(u["api_key"]))).status_code == 200
        admin = await asyncpg.connect(dsn)
        try:
            await admin.execute("UPDATE users SET api_key_hash = $1 WHERE id = $2",
                                hash_api_key("dk_other_rotation"), rotated["user_id"])
            await refused_within(c, auth(rotated["api_key"]), time.monotonic())
        finally:
            await admin.close()
        lookups = await auth_lookups(app)
        assert (await c.get(ACTIVITY, headers=auth(kept["api_key"]))).status_code == 200
        assert await auth_lookups(app) == lookups  # still a hit
