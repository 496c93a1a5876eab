"""Rolls the recent-calls partial index forward (see migration 0102).

The index predicate is a literal cutoff (`created_at >= '2026-10-25'`),
because PostgreSQL only accepts immutable predicates. As days pass, the index
covers more and more history and stops being "recent". This job, run daily
(`harness db maintain`, or cron against production), replaces it:

1. `CREATE INDEX CONCURRENTLY` a new index with a newer cutoff (reads and
   writes continue; the old index still serves queries meanwhile);
2. record the new cutoff in `partial_index_cutoffs`;
3. `DROP INDEX CONCURRENTLY` the old one.

CONCURRENTLY cannot run inside a transaction block, so each step is its own
statement on an autocommit connection. A failed concurrent build leaves an
INVALID index behind; the job drops it before retrying.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

log = logging.getLogger(__name__)
MARGIN_DAYS = 35   # cutoff = today - 35 days: covers the 30-day window plus slack
ROLL_AFTER_DAYS = 7  # roll once the cutoff is more than a week older than needed


@dataclass(frozen=True)
class RollResult:
    rolled: bool
    index_name: str
    cutoff: datetime
    dropped: str | None = None


def wanted_cutoff(now: datetime | None = None) -> datetime:
    today = (now or datetime.now(UTC)).astimezone(UTC)
    midnight = today.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight - timedelta(days=MARGIN_DAYS)


async def roll_recent_calls_index(conn: asyncpg.Connection, *, now: datetime | None = None,
                                  force: bool = False) -> RollResult:
    """Replace the partial index when its cutoff is stale (or `force`); idempotent."""
    current = await conn.fetchrow(
        "SELECT index_name, cutoff FROM partial_index_cutoffs WHERE purpose = 'recent_calls'")
    if current is None:
        raise RuntimeError("no recent_calls partial index registered (optimized schema missing?)")
    cutoff = wanted_cutoff(now)
    stale = cutoff - current["cutoff"] > timedelta(days=ROLL_AFTER_DAYS)
    if not (stale or (force and cutoff > current["cutoff"])):
        return RollResult(False, current["index_name"], current["cutoff"])
    name = f"calls_recent_{cutoff:%Y%m%d}"
    await conn.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"')  # a failed earlier build
    literal = cutoff.isoformat()
    await conn.execute(
        f'CREATE INDEX CONCURRENTLY "{name}" ON calls (user_id, created_at, id) '
        f"WHERE created_at >= '{literal}'::timestamptz")
    await conn.execute(
        "UPDATE partial_index_cutoffs SET index_name = $1, cutoff = $2, created_at = now() "
        "WHERE purpose = 'recent_calls'", name, cutoff)
    await conn.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{current["index_name"]}"')
    log.info("rolled recent_calls index %s -> %s", current["index_name"], name)
    return RollResult(True, name, cutoff, dropped=current["index_name"])
