"""`harness ab` for real on `tiny`: a toggle that turns the response cache off is flagged on
the overview, paired over two interleaved rounds; a git ref runs its own checkout."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from junitparser import JUnitXml

from harness.model.ab import AbRecord
from harness.run.ab import REPO

pytestmark = pytest.mark.e2e
OVERVIEW = "GET /api/v1/dashboard/overview"
# 2 rounds x 30 s = 12 blocks of 5 s a side: above the 8 the gate judges on
LOAD = ("--dataset", "tiny", "--scenario", "dashboard", "--users", "10", "--spawn-rate", "10",
        "--warmup", "3s")


def harness_ab(state_dir: Path, out: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", "ab", *args, *LOAD,
                           "--out", str(out), "--state-dir", str(state_dir)],
                          capture_output=True, text=True, timeout=900)


def job_dir(out: Path) -> Path:
    return sorted((out / "ab").iterdir())[-1]


def test_turning_the_response_cache_off_flags_the_overview(state_dir: Path, tmp_path: Path):
    out = tmp_path / "reports"
    done = harness_ab(state_dir, out, "--a", "profile:optimized",
                      "--b", "toggles:response_cache=false", "--rounds", "2",
                      "--duration", "30s")
    assert done.returncode == 1, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "gate: regressed" in done.stderr
    job = job_dir(out)
    record = AbRecord.model_validate_json((job / "ab.json").read_text())
    assert [(r.round, r.side, r.status) for r in record.runs] == [
        (1, "A", "complete"), (1, "B", "complete"), (2, "B", "complete"), (2, "A", "complete")]
    gate = json.loads((job / "gate.json").read_text())
    assert gate["verdict"] == "regressed" and "paired by round over 2" in gate["method"]
    regressed = {c["name"] for c in gate["checks"] if c["verdict"] == "regressed"}
    assert regressed & {f"p50 {OVERVIEW}", f"p95 {OVERVIEW}"}, regressed
    assert gate["baseline"]["toggles"] == {"response_cache": True}
    assert gate["current"]["toggles"] == {"response_cache": False}
    for r in record.runs:  # the B runs really ran without the cache
        target = json.loads((out / "runs" / r.run_id / "result.json").read_text())["run"][
            "target"]
        assert target["toggles"]["response_cache"] is (r.side == "A")
    assert len(record.round_changes) == 2
    assert all(rc[f"p50 {OVERVIEW}"] > 1.15 for rc in record.round_changes)
    assert next(iter(JUnitXml.fromfile(str(job / "junit.xml")))).failures >= 1


def test_a_git_ref_runs_from_its_own_worktree(state_dir: Path, tmp_path: Path):
    out = tmp_path / "reports"
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True,
                          text=True, check=True).stdout.strip()
    try:
        done = harness_ab(state_dir, out, "--a", "profile:optimized", "--b", "ref:HEAD",
                          "--rounds", "1", "--duration", "4s", "--users", "4")
        assert done.returncode in (0, 1), done.stderr[-3000:]  # 4 s cannot be judged well
        assert "Traceback" not in done.stderr
        record = AbRecord.model_validate_json((job_dir(out) / "ab.json").read_text())
        assert record.b_commit == head and record.a_commit is None
        b_run = out / "runs" / next(r.run_id for r in record.runs if r.side == "B")
        assert json.loads((b_run / "run.json").read_text())["git_commit"] == head
        assert (b_run / "logs" / "migrate.log").read_text().startswith("applied")
        assert (state_dir / "worktrees" / head[:12] / "target_service").is_dir()
    finally:
        subprocess.run(["git", "worktree", "remove", "--force",
                        str(state_dir / "worktrees" / head[:12])], cwd=REPO,
                       capture_output=True)
