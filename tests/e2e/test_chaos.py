"""`harness run --chaos` end to end on `tiny`: every fault kind injected into a real stack,
the run completes (exit 0), and each fault's record and recovery figures are there and
sane. Two short runs on a private state directory (the embedded server is restarted and
paused: no other test's server is touched): one with db-disconnect, a stub preset,
db-restart and db-pause; one with target-kill of one of two uvicorn workers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.test_run import only_result

pytestmark = pytest.mark.e2e


def chaos_run(state_dir: Path, out: Path, spec: str, *extra: str) -> dict:
    argv = [sys.executable, "-m", "harness.cli", "run", "--scenario", "mixed", "--dataset",
            "tiny", "--state-dir", str(state_dir), "--out", str(out), "--users", "10",
            "--spawn-rate", "10", "--duration", "24s", "--warmup", "3s", "--chaos", spec,
            *extra]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "chaos: faults injected" in done.stdout
    return only_result(out)[1]


def by_spec(result: dict) -> dict[str, dict]:
    return {f["spec"]["text"]: f for f in result["chaos"]}


def sane(fault: dict) -> dict:
    assert fault["ok"], fault
    assert fault["started_at"] is not None and fault["ended_at"] >= fault["started_at"]
    r = fault["recovery"]
    assert r is not None and r["requests_during"] > 0
    assert r["first_success_s"] is not None and r["first_success_s"] < 10
    assert r["pre_fault_p95_ms"] is not None
    return r


def test_database_and_stub_faults(state_dir: Path, tmp_path: Path):
    spec = "db-disconnect@4s,stub:outage@6s:4s,db-restart@12s,db-pause@17s:3s"
    result = chaos_run(state_dir, tmp_path / "reports", spec)
    faults = by_spec(result)
    assert list(faults) == spec.split(",")
    for fault in faults.values():
        sane(fault)
    assert "terminated" in faults["db-disconnect@4s"]["detail"]
    assert "restarted" in faults["db-restart@12s"]["detail"]
    assert "continued" in faults["db-pause@17s:3s"]["detail"]
    names = {e["name"] for e in result["events"]}
    assert {"chaos:db-pause@17s:3s", "chaos:db-pause@17s:3s end",
            "chaos:stub:outage@6s:4s end", "chaos:db-restart@12s"} <= names
    assert result["run"]["status"] == "complete"


def test_target_kill_with_two_workers(state_dir: Path, tmp_path: Path):
    result = chaos_run(state_dir, tmp_path / "reports", "target-kill@8s",
                       "--target-workers", "2")
    fault = by_spec(result)["target-kill@8s"]
    sane(fault)
    assert "uvicorn started" in fault["detail"]


def test_target_kill_with_one_worker_is_restarted(state_dir: Path, tmp_path: Path):
    result = chaos_run(state_dir, tmp_path / "reports", "target-kill@8s")
    fault = by_spec(result)["target-kill@8s"]
    r = sane(fault)
    assert "started it again" in fault["detail"]
    assert r["failures"], r  # one process: requests fail until it is back
