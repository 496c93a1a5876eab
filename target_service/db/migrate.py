"""A small migration runner for plain numbered SQL files.

Why not Alembic: the schema is a handful of hand-written SQL files, and the
harness needs one extra dimension Alembic does not model well: some
migrations exist only to make reads fast and are applied in the optimized
profile alone (the naive profile is the measured "before"). Each file declares
that on its first line (`-- profile: all` or `-- profile: optimized`).

The runner records what it applied in `schema_migrations` (with a checksum, so
an edited migration is reported instead of silently skipped) and holds an
advisory lock, so two processes migrating one database do not race. A second
run applies nothing.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from target_service.errors import MigrationError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_PROFILE = re.compile(r"^--\s*profile:\s*(all|optimized)\s*$")
_LOCK_KEY = 0x6D69_6772  # "migr"


@dataclass(frozen=True)
class Migration:
    """One SQL file: its version, which profiles get it, and its text."""

    version: int
    name: str
    profile: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()[:16]


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """All migrations in version order; malformed files are an error, not skipped."""
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if match is None:
            raise MigrationError(f"migration file name not of the form NNNN_name.sql: {path.name}")
        text = path.read_text()
        first = text.splitlines()[0] if text else ""
        profile = _PROFILE.match(first)
        if profile is None:
            raise MigrationError(f"{path.name}: first line must be '-- profile: all|optimized'")
        found.append(Migration(int(match[1]), match[2], profile[1], text))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError("two migrations share a version number")
    return found


def select(migrations: list[Migration], *, optimized: bool) -> list[Migration]:
    """The migrations a profile gets."""
    return [m for m in migrations if m.profile == "all" or optimized]


async def applied_versions(conn: asyncpg.Connection) -> dict[int, str]:
    """Version -> checksum of what this database already has."""
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not exists:
        return {}
    rows = await conn.fetch("SELECT version, checksum FROM schema_migrations")
    return {r["version"]: r["checksum"] for r in rows}


async def migrate(conn: asyncpg.Connection, *, optimized: bool,
                  directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Apply every pending migration for the profile; returns what was applied."""
    wanted = select(discover(directory), optimized=optimized)
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version    integer PRIMARY KEY,
                   name       text NOT NULL,
                   checksum   text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        done = await applied_versions(conn)
        applied: list[Migration] = []
        for m in wanted:
            if m.version in done:
                if done[m.version] != m.checksum:
                    raise MigrationError(
                        f"migration {m.version:04d}_{m.name} changed after it was applied"
                    )
                continue
            try:
                async with conn.transaction():
                    await conn.execute(m.sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                        m.version, m.name, m.checksum,
                    )
            except asyncpg.PostgresError as exc:
                raise MigrationError(f"migration {m.version:04d}_{m.name} failed: {exc}") from exc
            applied.append(m)
        return applied
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
