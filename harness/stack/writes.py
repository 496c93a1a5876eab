"""The end-of-run check that no acknowledged write is lost.

The writer (`scenarios/writer.py`) reports the `call_id` of every 201 it got;
`client.json` lists them (`ClientDoc.writes`). Here, at the end of the run and
while the run's database is still up, each id is looked up in `calls`: an
acknowledged id without its row is a *lost write*, a hard failure of the gate
(`harness.analysis.compare.hard_failures`). A write that failed with an error
(503, timeout, ...) was never acknowledged, so it is not counted at all.

A database that is still coming back from a fault (a restart, a pause) is
waited for, up to `timeout_s`; one that cannot be read then yields a record
that says so (`checked=False` and the reason, password redacted), never an
exception: the run's other results are kept, and the gate cannot call such a
run clean.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence

import asyncpg

from harness.model.chaos import WriteCheck
from harness.stack.database import redact, redact_text

LOST_IDS_KEPT = 20
"""Lost ids named in the record (all of them are counted)."""
CHUNK = 10_000
"""Ids looked up per query."""
_LOOKUP = "SELECT id FROM calls WHERE id = ANY($1::bigint[])"
_RETRYABLE = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


async def check_writes(dsn: str, ids: Sequence[int], duplicates: int = 0, *,
                       timeout_s: float = 30.0, retry_s: float = 0.5) -> WriteCheck:
    """Look every acknowledged id up in the database at `dsn`.

    `ids` may repeat (only distinct ids are checked; `duplicates` is what the clients
    counted, `AcknowledgedWrites.duplicates`). Errors are retried until `timeout_s`,
    then reported in the record: this never raises for a database problem."""
    distinct = sorted(set(ids))
    if not distinct:
        return WriteCheck(acknowledged=0, found=0, lost=0, duplicates=duplicates)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            found = await _found(dsn, distinct, max(0.5, deadline - time.monotonic()))
            break
        except _RETRYABLE as exc:
            if time.monotonic() + retry_s >= deadline:
                return WriteCheck(
                    acknowledged=len(distinct), found=0, lost=0, duplicates=duplicates,
                    checked=False,
                    error=redact_text(f"cannot read the calls of {redact(dsn)}: "
                                      f"{type(exc).__name__}: {exc}"))
            await asyncio.sleep(retry_s)
    lost = [i for i in distinct if i not in found]
    return WriteCheck(acknowledged=len(distinct), found=len(distinct) - len(lost),
                      lost=len(lost), duplicates=duplicates, lost_ids=lost[:LOST_IDS_KEPT])


async def _found(dsn: str, ids: list[int], timeout: float) -> set[int]:
    """The ids among `ids` that have a row in `calls` (one connection, chunked lookups)."""
    conn = await asyncpg.connect(dsn, timeout=min(timeout, 10.0))
    try:
        found: set[int] = set()
        for start in range(0, len(ids), CHUNK):
            rows = await conn.fetch(_LOOKUP, ids[start:start + CHUNK], timeout=timeout)
            found.update(int(r["id"]) for r in rows)
        return found
    finally:
        with contextlib.suppress(*_RETRYABLE):
            await conn.close(timeout=5)
