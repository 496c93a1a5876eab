"""Two real service processes on one database: a write through one is seen by the other."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import httpx
import pytest

from harness.stack.process import ManagedProcess, free_port
from tests.conftest import auth, busiest_user

pytestmark = pytest.mark.e2e
OVERVIEW = "/api/v1/dashboard/overview"


def start_service(name: str, dsn: str, log_dir: Path) -> tuple[ManagedProcess, str]:
    port = free_port()
    proc = ManagedProcess(name, [sys.executable, "-m", "target_service"], log_dir / f"{name}.log",
                          env={"TARGET_DATABASE_URL": dsn, "TARGET_PORT": str(port),
                               "TARGET_ELEVENLABS_ENABLED": "false"}).start()
    url = f"http://127.0.0.1:{port}"
    proc.wait_until(lambda: httpx.get(f"{url}/readyz", timeout=1).status_code == 200, 60,
                    "ready")
    return proc, url


async def test_write_in_one_process_evicts_in_the_other(fresh_db, datasets, tmp_path):
    dsn = await fresh_db("optimized")
    user = busiest_user(datasets.manifest)
    h = auth(user["api_key"])
    a, a_url = start_service("service-a", dsn, tmp_path)
    b, b_url = start_service("service-b", dsn, tmp_path)
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            before = (await client.get(b_url + OVERVIEW, headers=h)).json()
            cached = await client.get(b_url + OVERVIEW, headers=h)
            assert cached.headers["x-cache"] == "HIT"
            r = await client.post(a_url + "/api/v1/calls", headers=h,
                                  json={"agent_id": user["agent_ids"][0], "status": "completed",
                                        "direction": "outbound", "duration_seconds": 30})
            assert r.status_code == 201
            committed = time.monotonic()
            call_id = r.json()["call_id"]
            while True:  # B hears of the write through the database, not from A
                body = (await client.get(b_url + OVERVIEW, headers=h)).json()
                fresh = (body["recent_activity"][0]["call_id"] == call_id and
                         body["kpis"]["total_calls"] == before["kpis"]["total_calls"] + 1)
                if fresh:
                    break
                assert time.monotonic() - committed < 2.0, "process B served stale data"
                await asyncio.sleep(0.02)
    finally:
        a.stop()
        b.stop()
    assert not a.alive and not b.alive
