"""`harness stack up` as a user runs it: a real process tree, stopped by a signal."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

pytestmark = pytest.mark.e2e
EXTERNAL_URL = os.environ.get("HARNESS_EXTERNAL_TEST_URL",
                              "postgresql://postgres@127.0.0.1:5432/test")


def harness(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "harness.cli", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_json_line(proc: subprocess.Popen, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("{"):
            return json.loads(line)
        if not line and proc.poll() is not None:
            raise AssertionError(f"harness exited {proc.returncode}: {proc.stderr.read()}")
    raise AssertionError("no ready line")


def descendants(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


def exercise(info: dict) -> None:
    manifest = json.loads(Path(info["manifest"]).read_text())
    user = max(manifest["users"], key=lambda u: u["weight"])
    r = httpx.get(f"{info['target_url']}/api/v1/dashboard/overview",
                  headers={"Authorization": f"Bearer {user['api_key']}"}, timeout=10)
    assert r.status_code == 200 and r.json()["user_id"] == user["user_id"]
    assert httpx.get(info["metrics_url"], timeout=10).status_code == 200


def stop_and_check(proc: subprocess.Popen, sig: int) -> None:
    children = descendants(proc.pid)
    assert children, "the stack runs its components as child processes"
    proc.send_signal(sig)
    assert proc.wait(60) == 0
    _gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, [p.cmdline() for p in alive]


def test_stack_up_embedded_then_sigterm(tmp_path: Path, state_dir: Path):
    proc = harness("stack", "up", "--dataset", "tiny", "--json", "--state-dir",
                   str(state_dir), cwd=tmp_path)
    try:
        info = wait_for_json_line(proc)
        assert set(info) == {"target_url", "stub_url", "metrics_url", "manifest", "database_url",
                             "postgres_version"}
        assert int(info["postgres_version"].split(".")[0]) >= 14
        exercise(info)
        stop_and_check(proc, signal.SIGTERM)
        # the embedded server stopped with its last user
        assert not (state_dir / "pg" / "postmaster.pid").exists()
    finally:
        if proc.poll() is None:
            proc.kill()


def _external_reachable() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _external_reachable(), reason="no PostgreSQL on 127.0.0.1:5432")
def test_stack_up_external_database_then_ctrl_c(tmp_path: Path):
    proc = harness("stack", "up", "--dataset", "tiny", "--json", "--database-url", EXTERNAL_URL,
                   "--state-dir", str(tmp_path / "state"), cwd=tmp_path)
    try:
        info = wait_for_json_line(proc)
        exercise(info)
        clone = info["database_url"].rsplit("/", 1)[1].split("?")[0]
        stop_and_check(proc, signal.SIGINT)
        import asyncio

        import asyncpg

        async def exists() -> bool:
            conn = await asyncpg.connect(EXTERNAL_URL)
            try:
                return bool(await conn.fetchval(
                    "SELECT 1 FROM pg_database WHERE datname = $1", clone))
            finally:
                await conn.close()

        assert not asyncio.run(exists()), "the run's clone is dropped on the way out"
    finally:
        if proc.poll() is None:
            proc.kill()


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path):
    for args in (["stack", "up", "--profile", "fastest"],
                 ["stack", "up", "--dataset", "huge"],
                 ["stack", "up", "--database-url", "postgresql://nobody@127.0.0.1:1/x"],
                 ["stack", "up", "--database-url", "mysql://x"]):
        proc = harness(*args, "--state-dir", str(tmp_path / "s"), cwd=tmp_path)
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 2, (args, stderr)
        assert "Traceback" not in stderr
        assert "error:" in stderr
