"""The PostgreSQL results store: one table of runs, the documents as jsonb.

`postgresql://user[:password]@host[:port]/database[?schema=NAME]` (`schema`: where the
table lives, created when missing; default: the connection's search path). The table
`harness_runs` has the metadata as columns (`run_id` primary key, scenario, profile,
commit, started_at, machine, verdict: what `list` filters and orders by), the record
(`result`) and gate (`gate`) as jsonb, and the run's rendered `report.html`
gzip-compressed (`report`, bytea).

Why the page is stored too: a history page's points link to each run's report, and a
CI machine that starts empty has no run directories, only this database; a report is
also rendered from the interval log, which the table does not keep, so it cannot be
re-made later. `harness report --history` writes the stored pages of the runs it shows
beside itself. About 0.3-0.9 MB a run (the page is mostly its own compressed payload).

asyncpg (already the service's driver, so no new dependency) in `asyncio.run` per call:
the CLI is synchronous and makes a handful of queries. A push is one upsert by run id
(`INSERT ... ON CONFLICT DO UPDATE`), so pushing a run twice keeps one row. Anything
that keeps the store from being reached (refused, unknown host or database, bad
credentials, timeout) is a `ConfigError` naming the URL without its password: exit 2.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import re
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from harness.errors import ConfigError
from harness.model.gate import GateResult
from harness.model.result import RunResult
from harness.model.stored import LoadedRun, StoredRun
from harness.store import REPORT, Store, read_run_dir

TABLE = "harness_runs"
CONNECT_TIMEOUT_S = 10.0
COLUMNS = ("run_id", "scenario", "profile", "git_commit", "started_at", "machine", "verdict")


def split_url(url: str) -> tuple[str, str | None, str]:
    """(the URL asyncpg connects to, the schema asked for, the URL safe to print)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((v for k, v in query if k == "schema"), None)
    rest = urlencode([(k, v) for k, v in query if k != "schema"])
    dsn = urlunsplit(parts._replace(query=rest))
    netloc = parts.netloc.rsplit("@", 1)
    shown = netloc[-1] if len(netloc) == 1 else f"{netloc[0].split(':')[0]}@{netloc[1]}"
    printable = urlunsplit(parts._replace(netloc=shown, query=urlencode(
        [("schema", schema)] if schema else [])))
    if schema is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", schema):
        raise ConfigError(f"results store {printable}: schema must be a plain identifier")
    return dsn, schema, printable


class PostgresStore(Store):
    """Runs in a PostgreSQL table (see the module docstring)."""

    def __init__(self, url: str) -> None:
        self._dsn, self.schema, self.location = split_url(url)
        self._table = f'"{self.schema}".{TABLE}' if self.schema else TABLE
        self._ready = False

    def _run(self, op, create: bool = True):
        return asyncio.run(self._with_connection(op, create))

    async def _with_connection(self, op, create: bool):
        try:
            conn = await asyncpg.connect(self._dsn, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError, asyncpg.PostgresError,
                asyncpg.InterfaceError, ValueError) as exc:
            raise ConfigError(f"results store {self.location} cannot be reached: "
                              f"{type(exc).__name__}: {exc}".rstrip(": ")) from exc
        try:
            if create and not self._ready:
                await self._create(conn)
                self._ready = True
            return await op(conn)
        except asyncpg.PostgresError as exc:
            raise ConfigError(f"results store {self.location}: {exc}") from exc
        finally:
            await conn.close()

    async def _create(self, conn) -> None:
        async with conn.transaction():  # one creator at a time (IF NOT EXISTS can race)
            await conn.execute(f"SELECT pg_advisory_xact_lock(hashtext('{TABLE}'))")
            if self.schema:
                await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            await conn.execute(f"""
                CREATE TABLE IF NOT EXISTS {self._table} (
                    run_id text PRIMARY KEY,
                    scenario text NOT NULL,
                    profile text NOT NULL,
                    git_commit text,
                    started_at timestamptz NOT NULL,
                    machine text,
                    verdict text,
                    meta jsonb NOT NULL,
                    result jsonb NOT NULL,
                    gate jsonb,
                    report bytea,
                    pushed_at timestamptz NOT NULL DEFAULT now())""")
            await conn.execute(f"CREATE INDEX IF NOT EXISTS {TABLE}_scenario_started "
                               f"ON {self._table} (scenario, started_at)")

    def check(self) -> None:
        """Connect, and create the table when it is missing (ConfigError: unreachable)."""
        async def op(conn):
            return None

        self._run(op)

    def push(self, run_dir: Path) -> StoredRun:
        """Upsert the run's record, gate, metadata and page (by run id)."""
        result, gate, version = read_run_dir(run_dir)
        meta = StoredRun.of(result.run, gate.verdict if gate else None, version)
        page = run_dir / REPORT
        report = gzip.compress(page.read_bytes(), mtime=0) if page.is_file() else None
        started = datetime.fromisoformat(meta.started_at)

        async def op(conn):
            await conn.execute(
                f"""INSERT INTO {self._table} ({", ".join(COLUMNS)}, meta, result, gate, report)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::jsonb, $10::jsonb, $11)
                    ON CONFLICT (run_id) DO UPDATE SET
                      scenario = EXCLUDED.scenario, profile = EXCLUDED.profile,
                      git_commit = EXCLUDED.git_commit, started_at = EXCLUDED.started_at,
                      machine = EXCLUDED.machine, verdict = EXCLUDED.verdict,
                      meta = EXCLUDED.meta, result = EXCLUDED.result, gate = EXCLUDED.gate,
                      report = EXCLUDED.report, pushed_at = now()""",
                meta.run_id, meta.scenario, meta.profile, meta.git_commit, started,
                meta.machine, meta.verdict, meta.model_dump_json(), result.model_dump_json(),
                gate.model_dump_json() if gate else None, report)

        self._run(op)
        return meta

    def _query(self, what: str, scenario: str | None, last: int | None) -> str:
        where = "WHERE scenario = $1" if scenario is not None else ""
        limit = f"LIMIT {int(last)}" if last else ""
        return (f"SELECT * FROM (SELECT {what} FROM {self._table} {where} "
                f"ORDER BY started_at DESC, run_id DESC {limit}) newest "
                "ORDER BY started_at, run_id")

    def _fetch(self, what: str, scenario: str | None, last: int | None) -> list:
        args = [scenario] if scenario is not None else []

        async def op(conn):
            return await conn.fetch(self._query(what, scenario, last), *args)

        return self._run(op)

    def list(self, *, scenario: str | None = None, last: int | None = None
             ) -> list[StoredRun]:
        """The stored runs' metadata, oldest first."""
        rows = self._fetch("run_id, started_at, meta", scenario, last)
        return [StoredRun.model_validate_json(r["meta"]) for r in rows]

    def load(self, *, scenario: str | None = None, last: int | None = None
             ) -> list[LoadedRun]:
        """The selected runs with their record and gate."""
        rows = self._fetch("run_id, started_at, meta, result, gate", scenario, last)
        return [LoadedRun(meta=StoredRun.model_validate_json(r["meta"]),
                          result=RunResult.model_validate(json.loads(r["result"])),
                          gate=GateResult.model_validate_json(r["gate"]) if r["gate"] else None)
                for r in rows]

    def report(self, run_id: str) -> bytes | None:
        """The run's stored page (decompressed), None when it was pushed without one."""
        async def op(conn):
            return await conn.fetchval(f"SELECT report FROM {self._table} WHERE run_id = $1",
                                       run_id)

        data = self._run(op)
        return gzip.decompress(data) if data else None

    def drop(self) -> None:
        """Remove the table (and the schema when the URL named one): for tests and for
        throwaway stores."""
        async def op(conn):
            if self.schema:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
            else:
                await conn.execute(f"DROP TABLE IF EXISTS {self._table}")

        self._run(op, create=False)
        self._ready = False
