"""`harness ablate` for real on `tiny`, kept short for CI (three 4 s runs): all on, the
response cache off and all off, one round; `ablate.json` and `ablate.md` are written
and agree, each run really ran its configuration."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.model.ablation import AblationRecord

pytestmark = pytest.mark.e2e
OVERVIEW = "GET /api/v1/dashboard/overview"


def test_one_round_of_three_configurations_writes_a_coherent_record(state_dir: Path,
                                                                    tmp_path: Path):
    out = tmp_path / "reports"
    policy = tmp_path / "policy.toml"
    policy.write_text("[gate]\nblock_s = 1\nresamples = 300\n")  # 4 s runs: 1 s blocks
    # 12 users pacing at 0.5 tasks/s: ~24 tasks a 4 s run, half of them the overview, so
    # every run measures some (4 users made ~8, and CI once saw a run measure none)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "ablate", "--scenario", "dashboard",
         "--dataset", "tiny", "--toggles", "response_cache", "--rounds", "1",
         "--duration", "4s", "--warmup", "1s", "--users", "12", "--spawn-rate", "12",
         "--policy", str(policy), "--out", str(out), "--state-dir", str(state_dir)],
        capture_output=True, text=True, timeout=300, check=False)
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "run 3 of 3" in done.stderr
    job = next((out / "ablate").iterdir())
    record = AblationRecord.model_validate_json((job / "ablate.json").read_text())
    assert [c.name for c in record.configurations] == ["all on", "response_cache off",
                                                       "all off"]
    assert [(r.round, r.config, r.status) for r in record.runs] == [
        (1, "all on", "complete"), (1, "response_cache off", "complete"),
        (1, "all off", "complete")]
    assert record.analysed_at and record.command.startswith("harness ablate --scenario")
    for r in record.runs:  # each run ran its configuration
        target = json.loads((out / "runs" / r.run_id / "result.json").read_text())["run"][
            "target"]
        assert target["profile"] == ("naive" if r.config == "all off" else "optimized")
        assert target["toggles"]["response_cache"] is (r.config == "all on")
    by = {(e.config, e.metric, e.subject): e for e in record.effects}
    assert {c for c, _, _ in by} == {"response_cache off", "all off"}
    for config in ("response_cache off", "all off"):
        p95 = by[(config, "p95", OVERVIEW)]
        assert p95.change is not None and p95.change > 0 and p95.reference > 0
        assert p95.rounds == 1 and p95.unit == "ms"
        assert by[(config, "throughput", "all requests")].change is not None
        assert (config, "db_queries", "named queries") in by  # an estimate, or why not
    md = (job / "ablate.md").read_text()
    rows = [line for line in md.splitlines() if line.startswith("| ")]
    assert any(line.startswith("| all on (measured) |") for line in rows)
    assert any(line.startswith("| response_cache off |") for line in rows)
    assert any(line.startswith("| all off |") for line in rows)
    assert "p95 GET /dashboard/overview" in md and record.command in md
    print(f"harness ablate, 3 runs: {elapsed:.1f} s")
