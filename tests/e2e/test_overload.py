"""A stress run: a spike of unpaced users far past the optimized service's in-flight limit,
between two stretches of load under it. It sheds: 503s with `Retry-After` (told
`overloaded` fast, on the server's own clock), never a 500 or another failure; and once
the spike is over it serves everything again."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from target_service.errors import RETRY_AFTER_S

pytestmark = pytest.mark.e2e

LIMIT = 4
"""TARGET_MAX_IN_FLIGHT: low, so the one local generator surely exceeds it."""
USERS = 12
"""The spike: 12 closed-loop users, three times the limit. The `spike` shape runs
round(12 * 0.2) = 2 of them before and after it (the middle 20% of warm-up plus
duration): two users have at most two requests in flight, under the limit, so nothing
there is shed."""
URL_LINE = re.compile(r"Uvicorn running on (http://\S+)")


def samples(text: str, name: str) -> list:
    return [s for f in text_string_to_metric_families(text) for s in f.samples
            if s.name == name]


def target_and_key(out: Path) -> tuple[str, str] | None:
    """The run's target URL (from its log) and a seeded user's API key (its manifest)."""
    for run in out.glob("runs/*"):
        log, manifest = run / "logs" / "target.log", run / "dataset.json"
        found = URL_LINE.search(log.read_text(errors="replace")) if log.is_file() else None
        if found and manifest.is_file():
            try:
                key = json.loads(manifest.read_text())["users"][0]["api_key"]
            except ValueError:
                return None  # still being written
            return found.group(1), key
    return None


def probe_while_running(proc: subprocess.Popen, out: Path) -> list[tuple[float, httpx.Response]]:
    """A plain authenticated GET of the overview every 50 ms while the run lasts, with
    when it was answered: from outside the generator, what a client of the real stack
    sees during the stress run (one request at a time: it adds one to what is in
    flight, so the two users outside the spike plus it stay under the limit)."""
    answers: list[tuple[float, httpx.Response]] = []
    found = None
    with httpx.Client(timeout=5.0) as client:
        while proc.poll() is None:
            found = found or target_and_key(out)
            if found is not None:
                url, key = found
                try:
                    r = client.get(f"{url}/api/v1/dashboard/overview",
                                   headers={"authorization": f"Bearer {key}"})
                    answers.append((time.time(), r))
                except httpx.TransportError:
                    pass  # not listening yet, or already stopped at the run's end
            time.sleep(0.05)
    return answers


def test_an_overloaded_optimized_service_sheds_fast_and_recovers(state_dir, tmp_path):
    env = {**os.environ, "TARGET_MAX_IN_FLIGHT": str(LIMIT)}
    argv = [sys.executable, "-m", "harness.cli", "run", "--dataset", "tiny",
            "--scenario", "dashboard", "--users", str(USERS), "--spawn-rate", str(USERS),
            "--shape", "spike", "--pace-scale", "0", "--duration", "9s", "--warmup", "2s",
            "--state-dir", str(state_dir), "--out", str(tmp_path)]
    stderr = tmp_path / "stderr.txt"
    with open(stderr, "w") as err:  # files, not pipes: nothing read while it runs
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, env=env)
        try:
            answers = probe_while_running(proc, tmp_path)
            proc.wait(timeout=300)
        finally:
            if proc.poll() is None:  # the test failed while the run went on: end it
                proc.terminate()
                proc.wait(timeout=60)
    assert proc.returncode == 0, stderr.read_text()
    (run,) = (tmp_path / "runs").iterdir()
    result = json.loads((run / "result.json").read_text())
    failures = result["totals"]["failures"]
    assert failures.get("http_503", 0) > 0, failures
    assert set(failures) == {"http_503"}, failures  # no 500, no timeout, nothing else

    # the plain client: every answer a 200 or the shedder's 503, which says when to come back
    statuses = [r.status_code for _, r in answers]
    assert set(statuses) <= {200, 503} and 503 in statuses, statuses
    for _, r in answers:
        if r.status_code == 503:
            assert r.headers["retry-after"] == str(RETRY_AFTER_S), r.headers
            assert r.json()["error"]["code"] == "overloaded"

    # recovery: the seconds after the spike are served in full, without a single 503, to
    # the generator's users and to the plain client alike. A second's `users` is sampled
    # once, so the spike may still fill the two seconds after the last one that shows
    # it: those are left out.
    seconds = result["windows"]["seconds"]
    spike = [i for i, s in enumerate(seconds) if s["users"] == USERS]
    assert spike, [s["users"] for s in seconds]
    after = [s for s in seconds[spike[-1] + 3:] if s["phase"] == "measured"]
    assert len(after) >= 2, [(s["phase"], s["users"]) for s in seconds]
    for s in after:
        assert s["users"] < USERS
        count = sum(e["count"] for e in s["endpoints"].values())
        failed = sum(n for e in s["endpoints"].values() for n in e["failures"].values())
        assert count > 0 and failed == 0, s
    late = [r.status_code for t, r in answers if t >= after[0]["t"]]
    assert late and set(late) == {200}, late

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
