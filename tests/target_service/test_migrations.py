"""Migrations: idempotent, profile-aware, and loud about edited files."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from target_service.db import migrate
from target_service.errors import MigrationError


async def test_second_run_applies_nothing(fresh_db):
    conn = await asyncpg.connect(await fresh_db("optimized"))
    try:
        assert await migrate.migrate(conn, optimized=True) == []
        versions = await migrate.applied_versions(conn)
        assert set(versions) == {m.version for m in migrate.discover()}
    finally:
        await conn.close()


async def test_naive_database_has_no_optimizations(fresh_db):
    conn = await asyncpg.connect(await fresh_db("naive"))
    try:
        applied = await migrate.applied_versions(conn)
        assert applied.keys() == {m.version for m in migrate.discover() if m.profile == "all"}
        indexes = {r["indexname"] for r in await conn.fetch(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'calls'")}
        assert indexes == {"calls_pkey"}
        assert await conn.fetchval("SELECT to_regclass('user_kpi_summary')") is None
        # and migrating it to optimized later adds exactly the optimized migrations
        added = await migrate.migrate(conn, optimized=True)
        assert {m.profile for m in added} == {"optimized"}
        assert await conn.fetchval("SELECT to_regclass('user_kpi_summary')") is not None
    finally:
        await conn.close()


async def test_edited_migration_is_reported(fresh_db, tmp_path: Path):
    conn = await asyncpg.connect(await fresh_db("naive"))
    try:
        for m in migrate.discover():
            (tmp_path / f"{m.version:04d}_{m.name}.sql").write_text(m.sql)
        first = next(iter(sorted(tmp_path.glob("0001_*.sql"))))
        first.write_text(first.read_text() + "\n-- edited\n")
        with pytest.raises(MigrationError, match="changed after it was applied"):
            await migrate.migrate(conn, optimized=False, directory=tmp_path)
    finally:
        await conn.close()


def test_malformed_migration_names_are_rejected(tmp_path: Path):
    (tmp_path / "1_bad.sql").write_text("-- profile: all\nSELECT 1;")
    with pytest.raises(MigrationError, match="NNNN_name.sql"):
        migrate.discover(tmp_path)
    (tmp_path / "1_bad.sql").unlink()
    (tmp_path / "0001_no_marker.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="profile"):
        migrate.discover(tmp_path)
