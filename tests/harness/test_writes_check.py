"""`check_writes` against a real clone: acknowledged calls found, a deleted one lost.

The calls are written through the service itself (in-process), so the ids are
the ones a 201 really names; a row is then deleted behind its back, which is
exactly what a lost write looks like at the end of a run.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import asyncpg

from harness.model.chaos import WriteCheck
from harness.stack import writes
from tests.conftest import auth, running_app


async def acknowledged_calls(dsn: str, manifest: dict, n: int) -> list[int]:
    """`n` calls recorded through the service: the ids of its 201s."""
    user = next(u for u in manifest["users"] if u["agent_ids"])
    ids = []
    async with running_app(dsn) as (_app, client):
        for i in range(n):
            r = await client.post("/api/v1/calls", headers=auth(user["api_key"]), json={
                "agent_id": user["agent_ids"][0], "status": "completed",
                "direction": "inbound", "duration_seconds": 30 + i})
            assert r.status_code == 201, r.text
            ids.append(r.json()["call_id"])
    return ids


async def execute(dsn: str, sql: str, *args: object) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql, *args)
    finally:
        await conn.close()


async def test_every_acknowledged_write_is_found_and_a_deleted_one_is_lost(fresh_db, datasets):
    dsn = await fresh_db()
    ids = await acknowledged_calls(dsn, datasets.manifest, 5)
    assert await writes.check_writes(dsn, ids, 0) == WriteCheck(
        acknowledged=5, found=5, lost=0, duplicates=0)

    await execute(dsn, "DELETE FROM calls WHERE id = $1", ids[2])
    check = await writes.check_writes(dsn, [*ids, ids[0]], duplicates=1)
    assert check.checked and check.error is None
    assert (check.acknowledged, check.found, check.lost, check.duplicates) == (5, 4, 1, 1)
    assert check.lost_ids == [ids[2]]


async def test_ids_the_database_never_stored_are_lost_and_named_up_to_twenty(
        fresh_db, datasets, monkeypatch):
    dsn = await fresh_db()
    ids = await acknowledged_calls(dsn, datasets.manifest, 3)
    never = list(range(10**12, 10**12 + 25))
    monkeypatch.setattr(writes, "CHUNK", 4)  # several lookups, one answer
    check = await writes.check_writes(dsn, [*never, *ids])
    assert (check.acknowledged, check.found, check.lost) == (28, 3, 25)
    assert check.lost_ids == never[:writes.LOST_IDS_KEPT]


async def test_nothing_acknowledged_needs_no_database():
    check = await writes.check_writes("postgresql://nobody@127.0.0.1:1/none", [], 0)
    assert check == WriteCheck(acknowledged=0, found=0, lost=0, duplicates=0)


async def test_an_unreadable_database_is_said_not_raised_and_keeps_its_password():
    check = await writes.check_writes("postgresql://harness:s3cret@127.0.0.1:1/gone",
                                      [1, 2, 2], 1, timeout_s=1.0, retry_s=0.2)
    assert not check.checked and check.lost == 0 and check.found == 0
    assert check.acknowledged == 2 and check.duplicates == 1
    assert "cannot read the calls of postgresql://harness:***@127.0.0.1:1/gone" in check.error
    assert "s3cret" not in check.error


async def test_a_database_that_comes_back_is_waited_for(fresh_db, datasets):
    """The run's database is away (here: renamed) when the check starts and back a moment
    later, as after a restart: the check retries and then finds every row."""
    dsn = await fresh_db()
    ids = await acknowledged_calls(dsn, datasets.manifest, 2)
    name = urlsplit(dsn).path.lstrip("/")
    admin = datasets.admin_dsn  # the server's own database, never the clone
    await execute(admin, f'ALTER DATABASE "{name}" RENAME TO "{name}_away"')
    try:
        check = asyncio.create_task(writes.check_writes(dsn, ids, timeout_s=60, retry_s=0.2))
        await asyncio.sleep(1.0)
        assert not check.done()  # still waiting for the database
    finally:
        await execute(admin, f'ALTER DATABASE "{name}_away" RENAME TO "{name}"')
    result = await check
    assert result.checked and (result.found, result.lost) == (2, 0)

