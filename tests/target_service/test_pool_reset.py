"""Toggle `light_reset`: a connection goes back to the pool without asyncpg's
session-reset query, and an open transaction is still rolled back."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from target_service.db.pool import Database
from target_service.settings import Settings
from target_service.telemetry import ServiceMetrics


async def one_connection_pool(dsn: str, light_reset: bool) -> Database:
    settings = Settings(database_url=dsn, pool={"min_size": 1, "max_size": 1},
                        toggles={"light_reset": light_reset})
    return await Database.connect(settings, ServiceMetrics(CollectorRegistry()))


@pytest.mark.parametrize(("light_reset", "kept"), [(True, "marked"), (False, "")])
async def test_session_state_is_reset_on_release_only_without_the_toggle(
        shared_dbs, light_reset, kept):
    db = await one_connection_pool(shared_dbs["optimized"], light_reset)
    try:
        async with db.acquire() as conn:
            await conn.execute("SET harness_test.mark = 'marked'")
        async with db.acquire() as conn:  # the same connection: the pool holds one
            assert await conn.fetchval("SELECT current_setting('harness_test.mark', true)") \
                == kept
    finally:
        await db.close()


@pytest.mark.parametrize("light_reset", [True, False])
async def test_an_open_transaction_is_rolled_back_either_way(shared_dbs, light_reset):
    db = await one_connection_pool(shared_dbs["optimized"], light_reset)
    try:
        async with db.acquire() as conn:
            await conn.execute("BEGIN")
            await conn.execute("CREATE TEMP TABLE left_open (x int)")
        async with db.acquire() as conn:
            assert not conn.is_in_transaction()
            assert await conn.fetchval("SELECT to_regclass('pg_temp.left_open')") is None
    finally:
        await db.close()


def test_the_naive_profile_keeps_asyncpg_reset():
    assert Settings(profile="naive").flags.light_reset is False
    assert Settings(profile="optimized").flags.light_reset is True
