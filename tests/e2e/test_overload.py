"""A stress run: unpaced users far past the optimized service's in-flight limit. It sheds:
503s (told `overloaded` fast, on the server's own clock), never a 500 or another failure."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.e2e


def samples(text: str, name: str) -> list:
    return [s for f in text_string_to_metric_families(text) for s in f.samples
            if s.name == name]


def test_an_overloaded_optimized_service_sheds_fast_and_never_fails_otherwise(state_dir,
                                                                              tmp_path):
    # a low limit, so the one local generator surely exceeds it
    env = {**os.environ, "TARGET_MAX_IN_FLIGHT": "4"}
    argv = [sys.executable, "-m", "harness.cli", "run", "--dataset", "tiny",
            "--scenario", "dashboard", "--users", "40", "--spawn-rate", "40",
            "--pace-scale", "0", "--duration", "6s", "--warmup", "2s",
            "--state-dir", str(state_dir), "--out", str(tmp_path)]
    done = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=300,
                          env=env)
    assert done.returncode == 0, done.stderr
    (run,) = (tmp_path / "runs").iterdir()
    result = json.loads((run / "result.json").read_text())
    failures = result["totals"]["failures"]
    assert failures.get("http_503", 0) > 0, failures
    assert set(failures) == {"http_503"}, failures  # no 500, no timeout, nothing else
    end = (run / "metrics" / "window-end.prom").read_text()
    assert samples(end, "http_requests_shed_total")[0].value > 0
    # the server's time for its 503s: the 99th percentile bucket is a few ms at most
    buckets: dict[float, float] = {}
    for s in samples(end, "http_request_duration_seconds_bucket"):
        if s.labels["status"] == "503":
            le = float(s.labels["le"])
            buckets[le] = buckets.get(le, 0.0) + s.value
    total = buckets[float("inf")]
    p99 = min(le for le, n in buckets.items() if n >= 0.99 * total)
    assert p99 <= 0.05, buckets
