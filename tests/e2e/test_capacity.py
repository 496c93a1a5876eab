"""`harness capacity` on `tiny` with real processes: the lowest step holds, the found rate
lies between the lowest and the highest rate asked, and the record says so."""

from __future__ import annotations

import subprocess
import sys

import pytest

from harness.model.capacity import CAPACITY_JSON, CapacityRecord

pytestmark = pytest.mark.e2e


def test_capacity_on_tiny_finds_a_rate_between_its_steps(state_dir, tmp_path):
    argv = [sys.executable, "-m", "harness.cli", "capacity", "--dataset", "tiny",
            "--scenario", "dashboard", "--slo", "p95<300ms", "--min-requests", "50",
            "--start-rate", "10", "--factor", "3", "--max-steps", "2",
            "--step-duration", "5s", "--max-step-duration", "5s", "--warmup", "2s",
            "--state-dir", str(state_dir), "--out", str(tmp_path)]
    done = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    (directory,) = (tmp_path / "capacity").iterdir()
    rec = CapacityRecord.model_validate_json((directory / CAPACITY_JSON).read_bytes())
    assert rec.status == "complete" and 1 <= len(rec.steps) <= 2
    # 10 tasks/s of cached dashboard reads is far inside what the service serves
    assert rec.steps[0].verdict.outcome == "held", rec.steps[0].verdict
    c = rec.conclusion
    assert c is not None and 10 * 0.9 <= c.capacity_rate <= 30 * 1.1
    for step in rec.steps:  # every step is a complete run of its own
        assert (directory / "runs" / step.run_id / "result.json").is_file()
        if step.verdict.outcome == "held":
            assert step.latency_ms < 300 and step.error_rate < 0.01
    assert "capacity record:" in done.stdout and rec.id in done.stdout
