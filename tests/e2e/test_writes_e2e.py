"""A `writer` run on `tiny` against the real stack: every acknowledged write is found.

The whole path of the check, as `harness run` takes it: the writer reports each
201's `call_id`, the plugin carries them to `client.json`, and `check_writes`
looks them up in the run's database while the stack is still up. Then one
acknowledged row is deleted behind the service's back: the check must name it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from harness.model.chaos import WriteCheck
from harness.model.client import load_client
from harness.stack.writes import check_writes
from tests.harness.conftest import locust_cmd, run_locust

pytestmark = pytest.mark.e2e
CALLS = "POST /api/v1/calls"


@pytest.fixture(scope="module")
def stack(state_dir: Path):
    from harness.stack.stack import Stack, StackConfig

    with Stack(StackConfig(dataset="tiny", state_dir=state_dir / "state",
                           run_dir=state_dir / "run")) as s:
        yield s


async def delete_call(dsn: str, call_id: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        assert await conn.execute("DELETE FROM calls WHERE id = $1", call_id) == "DELETE 1"
    finally:
        await conn.close()


def test_a_writer_run_loses_no_acknowledged_write_and_a_deleted_row_is_caught(stack, tmp_path):
    out = tmp_path / "out"
    proc = run_locust(locust_cmd("scenarios/writer.py", stack.info.target_url, out,
                                 stack.info.manifest, users=4, run_time="6s",
                                 extra=["--harness-pace-scale", "5", "--harness-seed", "5"]),
                      timeout=90)
    assert proc.returncode == 0, proc.output
    doc = load_client(out / "client.json")
    posts = doc.endpoints[CALLS]
    assert posts.failures == {} and posts.warmup_failures == posts.cooldown_failures == 0
    every_post = posts.count + posts.warmup_count + posts.cooldown_count
    assert every_post >= 4
    assert len(doc.writes.ids) == every_post and doc.writes.duplicates == 0

    dsn = stack.info.database_url
    n = every_post
    check = asyncio.run(check_writes(dsn, doc.writes.ids, doc.writes.duplicates))
    assert check == WriteCheck(acknowledged=n, found=n, lost=0, duplicates=0)

    victim = doc.writes.ids[n // 2]
    asyncio.run(delete_call(dsn, victim))
    check = asyncio.run(check_writes(dsn, doc.writes.ids, doc.writes.duplicates))
    assert (check.acknowledged, check.found, check.lost) == (n, n - 1, 1)
    assert check.lost_ids == [victim]
