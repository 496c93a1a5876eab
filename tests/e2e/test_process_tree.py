"""`kill -9` of `harness stack up` leaves none of its components behind.

The harness cannot clean up after SIGKILL: the kernel does it for us, because
every component was started with PR_SET_PDEATHSIG (see harness/stack/process.py).
The embedded PostgreSQL is not a component: pgserver keeps it for the next user
and the next harness prunes the dead handle, so it is left out of the check."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")]


def components(pid: int) -> list[psutil.Process]:
    """Descendants of the harness other than PostgreSQL's (the stub, uvicorn and workers)."""
    found = []
    for proc in psutil.Process(pid).children(recursive=True):
        try:
            if "postgres" not in proc.name() and "pg_ctl" not in proc.name():
                found.append(proc)
        except psutil.NoSuchProcess:
            pass
    return found


def gone(proc: psutil.Process) -> bool:
    try:
        return proc.status() == psutil.STATUS_ZOMBIE  # exited; its reaper may be slow
    except psutil.NoSuchProcess:
        return True


def test_kill_9_of_stack_up_leaves_no_component_running(tmp_path: Path, state_dir: Path):
    harness = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "stack", "up", "--dataset", "tiny", "--json",
         "--target-workers", "2", "--state-dir", str(state_dir)],
        cwd=Path(__file__).resolve().parents[2], stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True)
    left: list[psutil.Process] = []
    try:
        line = harness.stdout.readline()
        assert line.startswith("{"), f"harness exited {harness.poll()} before it was ready"
        json.loads(line)
        left = components(harness.pid)
        names = sorted(" ".join(p.cmdline()[1:3]) for p in left)
        # the stub, the target's uvicorn supervisor and its 2 workers (grandchildren)
        assert len(left) >= 4 and any("harness.stubs.elevenlabs" in n for n in names), names
        harness.kill()
        harness.wait(10)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(gone(p) for p in left):
            time.sleep(0.05)
        alive = [p for p in left if not gone(p)]
        assert not alive, [p.cmdline() for p in alive]
    finally:
        for proc in left:
            if not gone(proc):
                proc.kill()
        if harness.poll() is None:
            harness.kill()
