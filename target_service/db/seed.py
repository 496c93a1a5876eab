"""Load a generated dataset into a migrated database with COPY.

Rows stream from `seed_data.Generator` straight into `COPY ... FROM STDIN`
(asyncpg's binary `copy_records_to_table`) in batches, so memory stays flat
even for the 10M-call preset. Derived tables are computed by PostgreSQL from
what was loaded (`agent_analytics` is a GROUP BY over `calls`), which keeps
them exactly consistent with the raw rows: the naive profile aggregates raw
calls, the optimized one reads the rollup, and both must agree.

When the role is a superuser, foreign-key triggers are skipped during the
load (`session_replication_role = replica`); the generator guarantees the
references, and `verify` checks them afterwards.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import date

import asyncpg

from target_service.db.seed_data import PRESETS, Generator

log = logging.getLogger(__name__)
BATCH = 50_000
Progress = Callable[[str, int], None]

_COLUMNS = {
    "users": ("id", "email", "name", "api_key_hash", "created_at"),
    "agents": ("id", "user_id", "elevenlabs_agent_id", "name", "status", "created_at"),
    "leads": ("id", "user_id", "name", "phone", "source", "status", "created_at"),
    "calls": ("id", "user_id", "agent_id", "lead_id", "status", "direction",
              "duration_seconds", "cost", "created_at"),
    "lead_analytics": ("lead_id", "user_id", "score", "calls_count", "last_call_at", "updated_at"),
}

ROLLUP_SQL = """
INSERT INTO agent_analytics (user_id, agent_id, date, hour, calls_count, completed_count,
                             total_duration_seconds, total_cost)
SELECT user_id, agent_id,
       (created_at AT TIME ZONE 'UTC')::date,
       extract(hour FROM created_at AT TIME ZONE 'UTC')::smallint,
       count(*), count(*) FILTER (WHERE status = 'completed'),
       sum(duration_seconds), sum(cost)
FROM calls
GROUP BY 1, 2, 3, 4
"""


def _batches(rows: Iterable[tuple], size: int) -> Iterator[list[tuple]]:
    it = iter(rows)
    while batch := list(itertools.islice(it, size)):
        yield batch


async def _copy(conn: asyncpg.Connection, table: str, rows: Iterable[tuple],
                progress: Progress | None) -> int:
    total = 0
    for batch in _batches(rows, BATCH):
        await conn.copy_records_to_table(table, records=batch, columns=_COLUMNS[table])
        total += len(batch)
        if progress:
            progress(table, total)
    return total


async def seed(conn: asyncpg.Connection, preset: str, seed: int, anchor: date,
               progress: Progress | None = None) -> dict:
    """Fill an empty, migrated (base schema) database; returns the dataset manifest."""
    if preset not in PRESETS:
        raise ValueError(f"unknown dataset preset {preset!r}; choose from {', '.join(PRESETS)}")
    started = time.perf_counter()
    gen = Generator(PRESETS[preset], seed, anchor)
    superuser = await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    async with conn.transaction():
        await conn.execute("SET LOCAL synchronous_commit = off")
        if superuser:
            await conn.execute("SET LOCAL session_replication_role = replica")
        counts = {
            "users": await _copy(conn, "users", gen.user_rows(), progress),
            "agents": await _copy(conn, "agents", gen.agent_rows(), progress),
            "leads": await _copy(conn, "leads", gen.lead_rows(), progress),
            "calls": await _copy(conn, "calls", gen.call_rows(), progress),
            "lead_analytics": await _copy(conn, "lead_analytics", gen.lead_analytics_rows(),
                                          progress),
        }
        snapshots = [(json.dumps(snap), a.id) for a in gen.agents
                     if (snap := gen.snapshot_for(a)) is not None]
        await conn.executemany(
            "UPDATE agents SET config_snapshot = $1::jsonb, snapshot_updated_at = created_at "
            "WHERE id = $2", snapshots)
        if progress:
            progress("agent_analytics", 0)
        await conn.execute(ROLLUP_SQL)
        for table in ("users", "agents", "leads", "calls"):
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT coalesce(max(id), 1) FROM {table}))")
        manifest = gen.manifest()
        manifest["counts"] = counts | manifest["counts"]
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS dataset_manifest (id int PRIMARY KEY DEFAULT 1 "
            "CHECK (id = 1), manifest jsonb NOT NULL, seeded_at timestamptz DEFAULT now())")
        await conn.execute(
            "INSERT INTO dataset_manifest (manifest) VALUES ($1::jsonb)", json.dumps(manifest))
    log.info("seeded preset %s (seed %d) in %.1fs: %s", preset, seed,
             time.perf_counter() - started, counts)
    return manifest


async def verify(conn: asyncpg.Connection) -> None:
    """Fail loudly if a loaded reference is dangling (FK triggers were skipped)."""
    dangling = await conn.fetchval(
        """SELECT (SELECT count(*) FROM calls c LEFT JOIN agents a ON a.id = c.agent_id
                   WHERE a.id IS NULL OR a.user_id <> c.user_id)
                + (SELECT count(*) FROM calls c LEFT JOIN leads l ON l.id = c.lead_id
                   WHERE c.lead_id IS NOT NULL AND (l.id IS NULL OR l.user_id <> c.user_id))""")
    if dangling:
        raise RuntimeError(f"seeded data has {dangling} dangling or cross-tenant references")


async def read_manifest(conn: asyncpg.Connection) -> dict | None:
    """The manifest stored in a seeded database (clones carry it too)."""
    exists = await conn.fetchval("SELECT to_regclass('dataset_manifest') IS NOT NULL")
    if not exists:
        return None
    raw = await conn.fetchval("SELECT manifest FROM dataset_manifest WHERE id = 1")
    return json.loads(raw) if raw is not None else None
