"""PostgreSQL for a run: the embedded server, seeded templates, per-run clones.

* Embedded (default): `pgserver` runs a real PostgreSQL from a pip wheel, data
  directory under `.harness/pg`, listening on a Unix socket only. It is
  reused across invocations and stopped when the last harness process using
  it exits.
* External: any PostgreSQL 14+ by URL; the role needs CREATEDB.

Seeding happens once per (preset, seed, anchor day, schema): the result is
kept as a template database, and every run gets a fast clone
(`CREATE DATABASE ... TEMPLATE`). The naive profile's template has only the
base schema; the optimized one is a clone of it plus the optimization
migrations, so both hold the very same rows.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import secrets
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import psutil

from harness.errors import DatabaseError, HarnessError
from target_service.db import migrate, seed
from target_service.db.seed_data import GENERATOR_VERSION, PRESETS

log = logging.getLogger(__name__)
TEMPLATE_LOCK = 0x7470_6C31  # "tpl1"
_DB_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


def with_database(dsn: str, database: str) -> str:
    """The same server URL pointing at another database."""
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


def redact(dsn: str) -> str:
    """A URL safe to print: the password, if any, replaced."""
    parts = urlsplit(dsn)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return dsn


_PASSWORD_IN_URL = re.compile(r"(://[^/\s:@]*):[^@\s/]*@")


def redact_text(text: str) -> str:
    """Any text (an error message, a note) with the password of every URL in it replaced."""
    return _PASSWORD_IN_URL.sub(r"\1:***@", text)


class EmbeddedPostgres:
    """A pgserver-managed PostgreSQL whose data directory lives under `.harness/`."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self._server = None

    def start(self) -> str:
        """Start (or attach to) the server; returns an admin URL. Starting again is a
        no-op that returns the same URL: this process already holds its one handle."""
        if self._server is not None:
            return self._server.get_uri()
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
            warnings.simplefilter("ignore")
            import pgserver  # imported late: it touches the filesystem on import

        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self._prune_dead_handles()
        try:
            self._server = pgserver.get_server(self.data_dir, cleanup_mode="stop")
        except Exception as exc:  # pgserver raises plain subprocess/assert errors
            log_file = self.data_dir / "log"
            raise DatabaseError(
                f"embedded PostgreSQL failed to start ({exc}); see {log_file}") from exc
        return self._server.get_uri()

    def restart(self, mode: str = "fast", timeout_s: float = 60) -> None:
        """Restart the running server in place: same data, same socket, a new postmaster
        (`pg_ctl restart` reuses the options it was started with). With `mode="fast"`
        every session is ended (`AdminShutdownError` in a running query) and new
        connections are refused until it is back: what a database restart does to the
        service. pgserver remembers the old postmaster to stop it at the end; it is told
        about the new one, or the last handle's cleanup would leave the server running."""
        from pgserver._commands import pg_ctl
        from pgserver.postgres_server import PostmasterInfo

        server = self._require()
        try:
            # -l again: pg_ctl keeps the server's options (postmaster.opts) but not its
            # log file, and a server logging into pg_ctl's closed pipe dies of it
            pg_ctl(["-w", "-t", str(int(timeout_s)), "-m", mode, "-l", str(server.log),
                    "restart"],
                   pgdata=server.pgdata, user=server.system_user, timeout=timeout_s + 5)
        except Exception as exc:  # CalledProcessError / TimeoutExpired from pgserver
            raise DatabaseError(f"embedded PostgreSQL did not restart ({exc}); "
                                f"see {self.data_dir / 'log'}") from exc
        info = PostmasterInfo.read_from_pgdata(server.pgdata)
        if info is None or not info.is_running():
            raise DatabaseError(f"embedded PostgreSQL is not running after a restart; "
                                f"see {self.data_dir / 'log'}")
        server._postmaster_info = info

    def postmaster_pid(self) -> int:
        """The running server's postmaster pid (its backends are its children): what
        `--chaos db-pause` stops and continues."""
        from pgserver.postgres_server import PostmasterInfo

        server = self._require()
        info = PostmasterInfo.read_from_pgdata(server.pgdata)
        if info is None or not info.is_running():
            raise DatabaseError("the embedded PostgreSQL server is not running")
        return info.pid

    def _require(self):
        if self._server is None:
            raise DatabaseError("the embedded PostgreSQL server is not started")
        return self._server

    def stop(self) -> None:
        """Release this process's handle; the server stops when no handle is left."""
        if self._server is not None:
            self._server.cleanup()
            self._server = None

    def _prune_dead_handles(self) -> None:
        """Drop the pids of dead users from pgserver's handle list.

        pgserver counts users in a pid list and stops the server with the last one; a
        harness killed with SIGKILL leaves its pid behind forever. The list is read and
        rewritten under pgserver's own inter-process lock (the one it holds to add and
        remove handles): without it, a harness starting at the same moment could add its
        pid between our read and our write, lose it, and have the server stopped under it
        when the other one exits."""
        from pgserver.postgres_server import PostgresServer

        handles = self.data_dir / ".handle_pids.json"
        with PostgresServer._lock:  # pgserver's lock for this very file
            if not handles.exists():
                return
            try:
                pids = json.loads(handles.read_text())
            except (OSError, ValueError):
                return
            # our own pid is stale unless this process already holds the server (pgserver
            # keeps one instance per directory and would not add the pid back)
            held = self.data_dir in PostgresServer._instances
            alive = [p for p in pids
                     if psutil.pid_exists(p) and (p != os.getpid() or held)]
            if alive != pids:
                tmp = handles.with_suffix(".tmp")
                tmp.write_text(json.dumps(alive))
                tmp.replace(handles)  # a reader never sees half a list


def schema_fingerprint() -> str:
    """Changes whenever a migration or the generator changes: templates are rebuilt."""
    digest = hashlib.sha256(str(GENERATOR_VERSION).encode())
    for m in migrate.discover():
        digest.update(f"{m.version}:{m.checksum}".encode())
    return digest.hexdigest()[:8]


@dataclass(frozen=True)
class Dataset:
    """A seeded template: its name and the manifest describing its users."""

    template: str
    manifest: dict


def template_name(preset: str, seed_value: int, anchor: date, optimized: bool) -> str:
    kind = "opt" if optimized else "base"
    return f"tpl_{preset}_s{seed_value}_{anchor:%Y%m%d}_{schema_fingerprint()}_{kind}"


async def _exists(conn: asyncpg.Connection, name: str) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))


async def _create_from(conn: asyncpg.Connection, name: str, template: str | None) -> None:
    if template is None:
        await conn.execute(f'CREATE DATABASE "{name}"')
        return
    version = await conn.fetchval("SHOW server_version_num")
    strategy = " STRATEGY FILE_COPY" if int(version) >= 150000 else ""
    await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"{strategy}')


async def ensure_dataset(admin_dsn: str, preset: str, seed_value: int, *, optimized: bool,
                         anchor: date | None = None,
                         progress: Callable[[str, int], None] | None = None) -> Dataset:
    """Return the template for this dataset and profile, seeding it if needed."""
    if preset not in PRESETS:
        raise DatabaseError(f"unknown dataset preset {preset!r}; choose from {', '.join(PRESETS)}")
    anchor = anchor or datetime.now(UTC).date()
    base = template_name(preset, seed_value, anchor, optimized=False)
    target = template_name(preset, seed_value, anchor, optimized=optimized)
    conn = await connect(admin_dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", TEMPLATE_LOCK)
        if not await _exists(conn, base):
            await _build(admin_dsn, conn, base, None, optimized=False,
                         seeder=lambda c: seed.seed(c, preset, seed_value, anchor, progress))
        if optimized and not await _exists(conn, target):
            await _build(admin_dsn, conn, target, base, optimized=True, seeder=None)
        await _drop_stale(conn, preset, seed_value, keep={base, target})
        manifest = await _read_manifest(admin_dsn, target)
    except _DB_ERRORS as exc:
        raise DatabaseError(f"preparing dataset {target} failed: {exc}") from exc
    finally:
        if not conn.is_closed():
            with contextlib.suppress(*_DB_ERRORS):
                await conn.execute("SELECT pg_advisory_unlock($1)", TEMPLATE_LOCK)
            await conn.close()
    return Dataset(target, manifest)


async def _build(admin_dsn: str, admin: asyncpg.Connection, name: str, template: str | None,
                 *, optimized: bool, seeder) -> None:
    building = name + "_building"
    await admin.execute(f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)')
    await _create_from(admin, building, template)
    conn = await asyncpg.connect(with_database(admin_dsn, building),
                                 server_settings={"timezone": "UTC"})
    try:
        await migrate.migrate(conn, optimized=optimized)
        if seeder is not None:
            await seeder(conn)
            await seed.verify(conn)
        await conn.execute("VACUUM ANALYZE")
    except (*_DB_ERRORS, RuntimeError) as exc:
        raise DatabaseError(f"building dataset {name} failed: {exc}") from exc
    finally:
        await conn.close()
    await admin.execute(f'ALTER DATABASE "{building}" RENAME TO "{name}"')


async def _drop_stale(conn: asyncpg.Connection, preset: str, seed_value: int,
                      keep: set[str]) -> None:
    """Drop older templates of the same preset and seed (another day or schema)."""
    rows = await conn.fetch("SELECT datname FROM pg_database WHERE datname LIKE $1",
                            f"tpl\\_{preset}\\_s{seed_value}\\_%")
    for row in rows:
        if row["datname"] not in keep and not row["datname"].endswith("_building"):
            log.info("dropping stale dataset template %s", row["datname"])
            await conn.execute(f'DROP DATABASE IF EXISTS "{row["datname"]}" WITH (FORCE)')


async def _read_manifest(admin_dsn: str, database: str) -> dict:
    conn = await asyncpg.connect(with_database(admin_dsn, database))
    try:
        manifest = await seed.read_manifest(conn)
    finally:
        await conn.close()
    if manifest is None:
        raise DatabaseError(f"database {database} has no dataset manifest")
    return manifest


async def connect(dsn: str, *, error: type[HarnessError] = DatabaseError,
                  timeout: float = 10) -> asyncpg.Connection:
    """A connection, or `error` with one readable line (password redacted).

    The caller picks the exit code: a URL the user typed that does not work is a
    `ConfigError` (2); a server we started that stopped answering is a
    `DatabaseError` (3).
    """
    try:
        return await asyncpg.connect(dsn, timeout=timeout)
    except (OSError, asyncpg.PostgresError, TimeoutError, ValueError) as exc:
        raise error(f"cannot reach PostgreSQL at {redact(dsn)}: {exc}") from exc


async def clone(admin_dsn: str, template: str, purpose: str = "run") -> str:
    """A fresh database cloned from the template; returns its URL."""
    name = f"harness_{purpose}_{datetime.now(UTC):%Y%m%d%H%M%S}_{secrets.token_hex(3)}"
    conn = await connect(admin_dsn)
    try:
        await _create_from(conn, name, template)
    except asyncpg.PostgresError as exc:
        raise DatabaseError(f"cloning {template} failed: {exc}") from exc
    finally:
        await conn.close()
    return with_database(admin_dsn, name)


async def drop(admin_dsn: str, dsn: str) -> None:
    """Drop a clone made by `clone` (never anything else)."""
    name = urlsplit(dsn).path.lstrip("/")
    if not name.startswith("harness_"):
        raise DatabaseError(f"refusing to drop {name}: not a harness clone")
    conn = await connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
