"""A real run with failures records what they said: `EndpointResult.error_samples`.

How the run fails (on `tiny`, the `agents` scenario, naive profile): the target's
database pool is one connection that may be waited for 1 ms (`TARGET_POOL__*`, read by
the service from the environment the harness passes on), and the embedded database is
frozen for 3 s of the measured window (`--chaos db-pause@3s:3s`): the one connection is
stuck in a query on the frozen server, so every request of those 3 s (about five a second
are sent) gets the service's `503 database_unavailable` ("timed out waiting for a
database connection"), and outside the pause two requests that want the connection at
once do too. The pause is what makes failures certain: the collisions alone depend on
how fast the machine answers (a CI run on a fast machine once saw none in 8 s). The
ElevenLabs stub is in an outage (`--faults outage`), which alone fails nothing (the
service degrades, every page answers 200). Two Locust workers, so the samples travel
worker -> master and are merged there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from harness.loadgen.samples import MAX_MESSAGE
from harness.model.result import ERROR_SAMPLES, json_schema
from tests.e2e.test_run import only_result

pytestmark = pytest.mark.e2e
STARVED_POOL = {"TARGET_POOL__MIN_SIZE": "1", "TARGET_POOL__MAX_SIZE": "1",
                "TARGET_POOL__ACQUIRE_TIMEOUT_S": "0.001"}


def test_a_run_with_failures_records_their_messages_and_no_key(state_dir: Path,
                                                              tmp_path: Path):
    out = tmp_path / "reports"
    argv = [sys.executable, "-m", "harness.cli", "run", "--dataset", "tiny", "--state-dir",
            str(state_dir), "--out", str(out), "--scenario", "agents", "--profile", "naive",
            "--faults", "outage", "--users", "10", "--spawn-rate", "10", "--workers", "2",
            "--duration", "10s", "--warmup", "2s", "--chaos", "db-pause@3s:3s"]
    done = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=240,
                          env={**os.environ, **STARVED_POOL})
    assert done.returncode == 0, done.stderr
    run_dir, result = only_result(out)
    jsonschema.validate(result, json_schema())
    endpoints = result["endpoints"]
    assert sum(sum(e["failures"].values()) for e in endpoints.values()) > 0, \
        "the paused database failed nothing: the test no longer tests anything"
    for key, e in endpoints.items():
        samples = e["error_samples"]
        assert set(samples) == set(e["failures"]), key  # every kind that failed, no other
        for kind, messages in samples.items():
            assert 1 <= len(messages) <= ERROR_SAMPLES, (key, kind)
            assert len(set(messages)) == len(messages)
            assert all(0 < len(m) <= MAX_MESSAGE and "\n" not in m for m in messages)
            if kind.startswith("http_"):
                assert all(m.startswith(f"HTTP {kind[5:]}") for m in messages), messages
            if kind == "http_503":  # the service's JSON error, code and message
                assert any(m.startswith("HTTP 503 database_unavailable: ") for m in messages)
    keys = [u["api_key"] for u in json.loads((run_dir / "dataset.json").read_text())["users"]]
    assert keys
    for name in ("result.json", "client.json", "report.html"):
        text = (run_dir / name).read_text()
        assert not [k for k in keys if k in text], name
