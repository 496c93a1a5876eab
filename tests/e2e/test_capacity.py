"""`harness capacity` on `tiny` with real processes, against a service starved by a known
amount, so the test knows where the SLO must break: the first step holds, the second asks
more than the service can possibly complete, breaks on errors (its 503s), and the found
capacity lies between the first step's rate and the arithmetic bound."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from harness.model.capacity import CAPACITY_JSON, CapacityRecord

pytestmark = pytest.mark.e2e

# The starved service: one uvicorn worker handles at most IN_FLIGHT requests at once (past
# that it sheds: 503), and each waits FLOOR_S (target_service/settings.py,
# `service_floor_ms`: an asyncio.sleep, so a busy machine can only make it slower). It
# therefore completes at most IN_FLIGHT / FLOOR_S = 40 requests a second, whatever the
# machine: CEILING_RPS.
IN_FLIGHT, FLOOR_S = 8, 0.2
CEILING_RPS = IN_FLIGHT / FLOOR_S
MAX_ERRORS = 0.05
START, FACTOR = 8.0, 6.0
"""Step 1 asks 8 tasks/s (a dashboard task makes 1 to 4 requests, 1.3 to 1.6 on average: about
2 requests in flight on average against 8 slots, so nearly nothing is shed and the p95 is
the 200 ms floor); step 2 asks 48, more requests a second than CEILING_RPS. Steps run 8 s:
at 5 s (40 / 8, the least `--min-requests 40` allows) a busy CI machine started 39
requests in step 1's window once, and a step short of its requests is "cannot tell"."""


def test_capacity_on_a_starved_service_breaks_where_arithmetic_says(state_dir, tmp_path):
    env = {**os.environ, "TARGET_MAX_IN_FLIGHT": str(IN_FLIGHT),
           "TARGET_SERVICE_FLOOR_MS": str(FLOOR_S * 1000)}
    argv = [sys.executable, "-m", "harness.cli", "capacity", "--dataset", "tiny",
            "--scenario", "dashboard", "--slo", "p95<800ms", "--errors", "<5%",
            "--min-requests", "40", "--start-rate", str(START), "--factor", str(FACTOR),
            "--max-steps", "2", "--step-duration", "8s", "--max-step-duration", "8s",
            "--warmup", "2s", "--state-dir", str(state_dir), "--out", str(tmp_path)]
    done = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=300,
                          env=env)
    assert done.returncode == 0, done.stderr
    (directory,) = (tmp_path / "capacity").iterdir()
    rec = CapacityRecord.model_validate_json((directory / CAPACITY_JSON).read_bytes())
    assert rec.status == "complete" and len(rec.steps) == 2, rec.steps
    first, second = rec.steps
    for step in rec.steps:  # every step is a complete run of its own, knob in force
        result = json.loads((directory / "runs" / step.run_id / "result.json").read_text())
        assert result["run"]["target"]["settings"]["service_floor_ms"] == "200.0"
        if step.saturated:  # a saturated generator is never the service's verdict
            assert step.verdict.outcome == "cannot_tell", step
    assert first.verdict.outcome == "held", first.verdict
    assert first.latency_ms >= FLOOR_S * 1000 * 0.95  # the floor is really there

    # In a measured window of T seconds the service completes at most CEILING_RPS * T
    # requests, plus the IN_FLIGHT begun before it: T / FLOOR_S + 1 rounds of 8 slots.
    def most_served(step) -> float:
        return IN_FLIGHT * (step.duration_s / FLOOR_S + 1)

    # Step 2 asked 48 tasks/s, so at least 48 requests a second: at least 1 - 40/48 = 17%
    # of them cannot have been served, over the 5% bound. It broke, on errors (the
    # service's own 503s), with the generator delivering what was asked (a saturated or
    # short generator would be "cannot tell", not the service's limit).
    assert second.verdict.outcome == "errors", second.verdict
    assert "requests failed" in second.verdict.reason
    assert not second.saturated
    assert second.requests - second.failures <= most_served(second), second
    run2 = json.loads((directory / "runs" / second.run_id / "result.json").read_text())
    assert set(run2["totals"]["failures"]) == {"http_503"}, run2["totals"]["failures"]

    # The capacity: at least the first step's rate (it held), and at most what a held step
    # can carry: its tasks make at least one request each, at least 95% of them served,
    # so tasks/s <= most_served / (0.95 T). 43 tasks/s here, below step 2's 48: a service
    # not starved would hold step 2 and fail this.
    c = rec.conclusion
    assert c is not None and c.broke_by == "errors" and c.broke_at_rate == START * FACTOR
    ceiling = most_served(first) / ((1 - MAX_ERRORS) * first.duration_s)
    assert START * 0.9 <= c.capacity_rate <= ceiling < START * FACTOR, (c, ceiling)
    assert "broke on errors" in c.summary
    assert "capacity record:" in done.stdout and rec.id in done.stdout
