"""StackConfig, StackInfo and Stack's lifecycle edges, mostly without starting PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from harness.errors import UsageError
from harness.stack import stack as stack_module
from harness.stack.stack import Stack, StackConfig, StackInfo

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def busy_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


class Boom:
    """A component whose teardown fails."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc
        self.calls = 0

    def stop(self, *args, **kwargs):
        self.calls += 1
        raise self.exc


# ---- configuration --------------------------------------------------------------------

def test_validate_opens_no_socket_even_for_a_busy_port(busy_port, monkeypatch, tmp_path):
    def no_sockets(*args, **kwargs):
        raise AssertionError("validate opened a socket")

    monkeypatch.setattr(socket, "socket", no_sockets)
    StackConfig(port=busy_port, run_dir=tmp_path).validate()
    Stack(StackConfig(port=busy_port, run_dir=tmp_path))  # nor does building the stack


@pytest.mark.parametrize("field, value, message", [
    ("dataset", "huge", "unknown dataset 'huge'"),
    ("profile", "fast", "unknown profile 'fast'"),
    ("port", 70000, "--port must be between 0 and 65535"),
    ("target_workers", 0, "--target-workers must be at least 1"),
    ("database_url", "mysql://x", "--database-url must be a postgresql:// URL"),
    ("faults", "chaos", "unknown fault preset 'chaos'"),
])
def test_validate_rejects_what_cannot_work(field, value, message):
    with pytest.raises(UsageError, match=re.escape(message)):
        StackConfig(**{field: value}).validate()


def test_never_set_fields_are_gone():
    names = set(StackConfig.__dataclass_fields__)
    assert not names & {"host", "keep_database", "stub"}
    assert names == {"dataset", "seed", "profile", "database_url", "state_dir", "run_dir",
                     "port", "target_workers", "faults", "target_cpus", "target_env",
                     "target_source", "bind_host", "advertise_host"}


def test_stack_info_json_names_the_postgres_version():
    info = StackInfo(target_url="http://127.0.0.1:1", stub_url="http://127.0.0.1:2",
                     metrics_url="http://127.0.0.1:1/metrics",
                     database_url="postgresql://u:secret@h/db", manifest="/m.json",
                     postgres_version="16.4")
    doc = json.loads(info.as_json())
    assert doc == {"target_url": "http://127.0.0.1:1", "stub_url": "http://127.0.0.1:2",
                   "metrics_url": "http://127.0.0.1:1/metrics", "manifest": "/m.json",
                   "database_url": "postgresql://u:***@h/db", "postgres_version": "16.4"}


# ---- up: the port probe comes first ---------------------------------------------------

def test_up_with_a_busy_port_fails_before_anything_starts(busy_port, monkeypatch, tmp_path):
    def no_database(*args, **kwargs):
        raise AssertionError("the database was started before the port was checked")

    monkeypatch.setattr(stack_module.database, "EmbeddedPostgres", no_database)
    stack = Stack(StackConfig(port=busy_port, state_dir=tmp_path / "state",
                              run_dir=tmp_path / "run"))
    with pytest.raises(UsageError) as caught, stack:
        pass
    assert str(caught.value) == f"port {busy_port} on 127.0.0.1 is already in use"
    assert not (tmp_path / "run").exists()  # nothing written either


def test_stack_up_with_a_busy_port_exits_2_with_one_line(busy_port, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "stack", "up", "--port",
                           str(busy_port), "--state-dir", str(tmp_path / "state")],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines == [f"error: port {busy_port} on 127.0.0.1 is already in use"], proc.stderr
    assert not (tmp_path / "state" / "pg").exists()


# ---- down: never raises, safe twice ---------------------------------------------------

def test_down_before_up_and_twice(tmp_path):
    stack = Stack(StackConfig(run_dir=tmp_path))
    stack.down()
    stack.down()


def test_down_runs_every_step_even_when_each_fails(tmp_path, monkeypatch, caplog):
    stack = Stack(StackConfig(run_dir=tmp_path))
    target, stub = Boom(RuntimeError("target stop failed")), Boom(KeyboardInterrupt())
    embedded = Boom(OSError("pgserver cleanup failed"))
    dropped = []

    async def failing_drop(admin, dsn):
        dropped.append(dsn)
        raise asyncpg.PostgresError("database is being accessed by other users")

    monkeypatch.setattr(stack_module.database, "drop", failing_drop)
    stack.target, stack.stub, stack._embedded = target, stub, embedded
    stack._admin_dsn = "postgresql://127.0.0.1:1/postgres"
    stack._run_dsn = "postgresql://127.0.0.1:1/harness_run_x"
    with caplog.at_level(logging.WARNING, logger="harness.stack.stack"):
        stack.down()  # a second Ctrl-C (KeyboardInterrupt) in the stub's stop included
    assert (target.calls, stub.calls, embedded.calls) == (1, 1, 1)
    assert dropped == ["postgresql://127.0.0.1:1/harness_run_x"]
    for what in ("stopping the target service failed: RuntimeError",
                 "stopping the ElevenLabs stub failed: KeyboardInterrupt",
                 "dropping the run database failed: PostgresError",
                 "stopping embedded PostgreSQL failed: OSError"):
        assert what in caplog.text
    assert (stack.target, stack.stub, stack._embedded, stack._run_dsn) == (None,) * 4
    stack.down()  # nothing left to do: no step runs twice
    assert (target.calls, stub.calls, embedded.calls, len(dropped)) == (1, 1, 1, 1)


def test_down_after_a_failed_up_stops_what_started(tmp_path, monkeypatch):
    started = Boom(RuntimeError("unused"))
    started.stop = lambda *a, **k: setattr(started, "calls", started.calls + 1)

    def database_then_failure(self):
        self._embedded = started  # the database came up, then seeding failed
        raise stack_module.DatabaseError("seeding failed")

    monkeypatch.setattr(Stack, "_start_database", database_then_failure)
    stack = Stack(StackConfig(state_dir=tmp_path / "state", run_dir=tmp_path / "run"))
    with pytest.raises(stack_module.DatabaseError, match="seeding failed"), stack:
        pass
    assert started.calls == 1 and stack._embedded is None
    stack.down()
    assert started.calls == 1


# ---- a real stack ---------------------------------------------------------------------

def test_a_real_stack_reports_its_postgres_version(stack):
    version = stack.info.postgres_version
    assert re.fullmatch(r"\d{2}\.\d+.*", version), version
    assert int(version.split(".")[0]) >= 14  # DESIGN: PostgreSQL 14+

    async def server_says() -> str:
        conn = await asyncpg.connect(stack.info.database_url)
        try:
            return await conn.fetchval("SHOW server_version")
        finally:
            await conn.close()

    assert version == asyncio.run(server_says())
    assert json.loads(stack.info.as_json())["postgres_version"] == version
