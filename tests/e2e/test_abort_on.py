"""`harness run --abort-on` on real processes: a run whose ElevenLabs stub is in outage
stops early, exits 1, says why in result.json, and leaves no process behind.

What moves under `--faults outage` (measured on `tiny`, the `agents` scenario): the
service degrades instead of failing (0% errors), but each time its circuit breaker
lets a probe through (every ~5 s of cool-down) that request waits out the retries,
~1 s, where a healthy agents page takes at most ~65 ms. The max over the live span
holds such a request for 5 s, so `max ... >500ms for 3s` fires within seconds of
the measured phase opening in an outage and never on a healthy stub.
"""

from __future__ import annotations

import time
from pathlib import Path

import jsonschema
import psutil
import pytest

from harness.model.result import json_schema
from tests.e2e.test_run import harness_run, no_process_left, only_result, wait_for_load

pytestmark = pytest.mark.e2e
SPECS = ("max:/api/v1/agents>500ms for 3s", "max:GET /api/v1/agents/{agent_id}>500ms for 3s",
         "errors>50% for 10s")
LOAD = ("--scenario", "agents", "--users", "10", "--spawn-rate", "10", "--warmup", "2s")


def abort_args() -> list[str]:
    return [arg for spec in SPECS for arg in ("--abort-on", spec)]


def test_an_outage_breaches_the_threshold_and_stops_the_run_early(state_dir: Path,
                                                                  tmp_path: Path):
    out = tmp_path / "reports"
    started = time.monotonic()
    proc = harness_run(state_dir, out, *LOAD, "--duration", "60s", "--faults", "outage",
                       *abort_args())
    wait_for_load(proc, out)
    children = psutil.Process(proc.pid).children(recursive=True)
    assert any("locust" in " ".join(c.cmdline()) for c in children)
    _, stderr = proc.communicate(timeout=120)
    loaded_for = time.monotonic() - started
    assert proc.returncode == 1, stderr
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("aborted: --abort-on 'max:") and "into the measured phase" in last
    no_process_left(children)
    run_dir, result = only_result(out)
    jsonschema.validate(result, json_schema())
    run, why = result["run"], result["run"]["aborted"]
    assert run["status"] == "aborted"
    assert why["spec"] in SPECS[:2] and why["metric"] == "max" and why["unit"] == "ms"
    assert why["endpoint"] in ("GET /api/v1/agents", "GET /api/v1/agents/{agent_id}")
    assert why["observed"] > 500 and why["breached_for_s"] >= 3
    assert why["breached_since"] < why["fired_at"]
    assert why["after_measured_s"] < 40  # well before the 60 s the run was asked for
    assert why["spec"] in last and str(run_dir) in last
    # stopped like a normal end: Locust's results and the record's views are all there
    assert result["totals"]["count"] > 0 and result["correctness"]["degraded_responses"] > 0
    for artifact in ("client.json", "summary.md", "windows.hlog", "metrics/window-end.prom"):
        assert (run_dir / artifact).exists(), artifact
    assert "(aborted)" in (run_dir / "summary.md").read_text()
    assert loaded_for < 90


def test_a_healthy_stub_does_not_breach_it(state_dir: Path, tmp_path: Path):
    out = tmp_path / "reports"
    proc = harness_run(state_dir, out, *LOAD, "--duration", "12s", *abort_args())
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    _, result = only_result(out)
    assert result["run"]["status"] == "complete" and result["run"].get("aborted") is None
    assert not any("never judged" in note for note in result["run"]["notes"])
