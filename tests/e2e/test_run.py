"""`harness run` as a user and CI run it: real processes, real files, real exit codes."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import psutil
import pytest

from harness import hdr
from harness.model import intervals
from harness.model.result import json_schema
from target_service.settings import Toggles

pytestmark = pytest.mark.e2e
MIXED_ENDPOINTS = {
    "GET /api/v1/dashboard/overview", "GET /api/v1/dashboard/analytics",
    "GET /api/v1/activity", "GET /api/v1/agents", "GET /api/v1/agents/{agent_id}",
    "POST /api/v1/calls",
}


def harness_run(state_dir: Path, out: Path, *args: str) -> subprocess.Popen:
    argv = [sys.executable, "-m", "harness.cli", "run", "--dataset", "tiny",
            "--state-dir", str(state_dir), "--out", str(out), *args]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def only_result(out: Path) -> tuple[Path, dict]:
    runs = [p for p in (out / "runs").iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0], json.loads((runs[0] / "result.json").read_text())


def wait_for_load(proc: subprocess.Popen, out: Path, timeout: float = 120) -> None:
    """Until Locust reports live figures (the stack is up and load is flowing)."""
    deadline = time.monotonic() + timeout
    while not list(out.glob("runs/*/live.json")):
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "no load after the timeout"
        time.sleep(0.2)


def wait_for_measured(proc: subprocess.Popen, out: Path, timeout: float = 120) -> None:
    """Until live.json's whole span (its last complete seconds) lies in the measured
    phase and holds requests: on a busy machine spawning and warm-up can take longer
    than any fixed sleep, and a run interrupted before its measured phase rightly
    records no requests."""
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "no measured load after the timeout"
        for path in out.glob("runs/*/live.json"):
            try:
                live = json.loads(path.read_text())
            except (OSError, ValueError):
                continue  # being replaced
            start, span_from = live.get("measure_from"), live.get("span_from")
            total = live.get("total") or {}
            if start is not None and span_from is not None and span_from >= start \
                    and total.get("count", 0) > 0:
                return
        time.sleep(0.2)


def assert_windows_add_up(run_dir: Path, result: dict) -> None:
    """The time series re-aggregates exactly: per endpoint, the measured windows' counts
    are the endpoint's count and their interval-log histograms merge into its histogram."""
    log = intervals.load(run_dir / result["windows"]["interval_log"])
    seconds = result["windows"]["seconds"]
    ts = [w["t"] for w in seconds]
    assert ts == list(range(ts[0], ts[-1] + 1))  # every second, no holes
    measured = [w["t"] for w in seconds if w["phase"] == "measured"]
    for key, endpoint in result["endpoints"].items():
        counts = sum(w["endpoints"].get(key, {}).get("count", 0) for w in seconds
                     if w["phase"] == "measured")
        assert counts == endpoint["count"], key
        for kind, field in (("raw", "histogram"), ("corrected", "corrected_histogram")):
            merged = log.merged(key, measured, kind)
            whole = hdr.decode(endpoint[field])
            assert merged.get_total_count() == whole.get_total_count() == endpoint["count"]
            for pct in (50, 90, 99, 99.9, 100):
                assert merged.get_value_at_percentile(pct) == \
                    whole.get_value_at_percentile(pct), (key, kind, pct)


def assert_server_series_adds_up(result: dict) -> None:
    """The server's series, scrape to scrape, adds up to the window-edge scrapes."""
    rows = [r for r in result["server"]["series"] if r["phase"] == "measured"]
    assert rows and rows[-1]["edge"] == "end"
    assert not result["server"]["failed_scrapes"]
    for key, stats in result["server"]["routes"].items():
        assert sum(r["requests"].get(key, 0) for r in rows) == stats["count"], key
    for name, cache in result["server"]["caches"].items():
        assert sum(r["cache_hits"].get(name, 0) for r in rows) == cache["hits"], name
        assert sum(r["cache_misses"].get(name, 0) for r in rows) == cache["misses"], name
    upstream = result["server"]["upstream"]
    assert sum(r["upstream_requests"] for r in rows) == upstream["logical_requests"]
    assert sum(r["upstream_attempts"] for r in rows) == upstream["attempts"]


def no_process_left(children: list[psutil.Process]) -> None:
    _, alive = psutil.wait_procs(children, timeout=15)
    assert not alive, [" ".join(p.cmdline()[:4]) for p in alive]


def test_a_short_run_writes_a_complete_schema_valid_result(state_dir: Path, tmp_path: Path):
    out = tmp_path / "reports"
    proc = harness_run(state_dir, out, "--users", "12", "--spawn-rate", "12",
                       "--duration", "8s", "--warmup", "2s", "--workers", "2")
    stdout, stderr = proc.communicate(timeout=240)
    assert proc.returncode == 0, stderr
    run_dir, result = only_result(out)
    jsonschema.validate(result, json_schema())
    assert result["run"]["status"] == "complete" and result["run"]["workers"] == 2
    # every run ends with its HTML report beside the record
    assert (run_dir / "report.html").stat().st_size > 0 and "report:" in stderr
    assert set(result["endpoints"]) == MIXED_ENDPOINTS
    assert result["totals"]["count"] > 0
    for name, endpoint in result["endpoints"].items():
        # every endpoint was exercised (a rare one may miss the 8 s window on a busy machine)
        assert endpoint["warmup_count"] + endpoint["count"] + endpoint["cooldown_count"] > 0
        # the service counted the very requests the clients measured
        assert abs(endpoint["server_count"] - endpoint["count"]
                   - endpoint["cooldown_count"]) <= 2, name
    assert result["agreement"]["diff_ratio"] <= 0.02
    assert result["correctness"]["tenant_leaks"] == 0
    server, routes = result["server"], result["server"]["routes"]
    # every dashboard read is one dashboard-cache lookup (re-warming after a KPI refresh
    # adds a few of its own), every API request one auth lookup
    dash = server["caches"]["dashboard"]
    reads = routes["GET /api/v1/dashboard/overview"]["count"] + \
        routes["GET /api/v1/dashboard/analytics"]["count"]
    assert reads <= dash["hits"] + dash["stale_hits"] + dash["misses"] <= \
        reads + server["kpi_view"]["refreshes"] * 12  # at most every tiny user re-warmed
    auth = server["caches"]["auth"]
    # a request in flight when a window-edge scrape is taken has its lookup on one side of
    # the edge and its completion on the other: at most one per user apart
    assert abs(auth["hits"] + auth["misses"]
               - sum(routes[e]["count"] for e in MIXED_ENDPOINTS)) <= 12
    posts = result["endpoints"]["POST /api/v1/calls"]["server_count"]
    assert server["queries"]["insert_call"]["count"] == posts
    # what was really in force, as the service reported it, and where it ran
    target = result["run"]["target"]
    assert target["profile"] == "optimized" and target["settings"]["workers"] == "1"
    assert set(target["toggles"]) == set(Toggles.model_fields) and all(target["toggles"].values())
    assert result["run"]["machine"]["postgres_version"].split(".")[0] in ("14", "15", "16",
                                                                          "17", "18")
    assert_windows_add_up(run_dir, result)
    assert_server_series_adds_up(result)
    for artifact in ("timeseries.csv", "summary.md", "dataset.json", "logs/target.log",
                     "logs/locust-master.log", "metrics/window-start.prom",
                     "metrics/window-end.prom", "metrics/scrapes.jsonl", "windows.hlog",
                     "windows.jsonl", "client.json", "run.json", "processes.csv"):
        assert (run_dir / artifact).exists(), artifact
    assert (out / "latest").resolve() == run_dir.resolve()
    assert "GET /api/v1/dashboard/overview" in stdout
    listing = subprocess.run([sys.executable, "-m", "harness.cli", "runs", "--out", str(out)],
                             capture_output=True, text=True, timeout=60)
    assert listing.returncode == 0 and run_dir.name[:15] in listing.stdout


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupting_a_run_keeps_results_and_leaves_no_process(state_dir: Path,
                                                               tmp_path: Path, sig):
    out = tmp_path / "reports"
    proc = harness_run(state_dir, out, "--users", "5", "--spawn-rate", "5",
                       "--duration", "60s", "--warmup", "1s")
    wait_for_measured(proc, out)
    children = psutil.Process(proc.pid).children(recursive=True)
    assert any("locust" in " ".join(c.cmdline()) for c in children)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=90)
    assert proc.returncode == 3, stderr
    assert "Traceback" not in stderr
    no_process_left(children)
    _, result = only_result(out)
    assert result["run"]["status"] == "interrupted"
    assert result["totals"]["count"] > 0


def test_a_target_that_dies_is_named_and_partial_results_are_kept(state_dir: Path,
                                                                  tmp_path: Path):
    out = tmp_path / "reports"
    proc = harness_run(state_dir, out, "--users", "5", "--spawn-rate", "5",
                       "--duration", "60s", "--warmup", "1s")
    wait_for_load(proc, out)
    time.sleep(2)
    children = psutil.Process(proc.pid).children(recursive=True)
    target = next(c for c in children if "target_service" in " ".join(c.cmdline()))
    target.kill()
    _, stderr = proc.communicate(timeout=90)
    assert proc.returncode == 3
    assert "target service" in stderr and "target.log" in stderr
    assert "Traceback" not in stderr
    no_process_left(children)
    _, result = only_result(out)
    assert result["run"]["status"] == "failed"


def _busy_port() -> socket.socket:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    return s


@pytest.mark.parametrize("args, words", [
    (["--scenario", "nope"], "unknown scenario"),
    (["--shape", "zigzag"], "unknown shape"),
    (["--faults", "apocalypse"], "unknown fault preset"),
    (["--profile", "turbo"], "unknown profile"),
    (["--duration", "ten seconds"], "malformed duration"),
    (["--warmup", "5x"], "malformed duration"),
    (["--dataset", "gigantic"], "unknown dataset"),
    (["--database-url", "postgresql://nobody@127.0.0.1:1/none"], "cannot reach PostgreSQL"),
])
def test_bad_input_is_one_line_and_exit_2(state_dir: Path, tmp_path: Path, args, words):
    proc = harness_run(state_dir, tmp_path / "reports", *args)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 2, stderr
    assert words in stderr and "Traceback" not in stderr


def test_a_port_in_use_is_exit_2(state_dir: Path, tmp_path: Path):
    busy = _busy_port()
    try:
        proc = harness_run(state_dir, tmp_path / "reports", "--port",
                           str(busy.getsockname()[1]))
        _, stderr = proc.communicate(timeout=120)
    finally:
        busy.close()
    assert proc.returncode == 2 and "already in use" in stderr


def test_a_remote_worker_joins_with_harness_worker(state_dir: Path, tmp_path: Path):
    """`harness worker --master HOST:PORT` is how a run grows past one machine."""
    out = tmp_path / "reports"
    proc = harness_run(state_dir, out, "--users", "4", "--spawn-rate", "4", "--duration", "5s",
                       "--warmup", "1s", "--workers", "0", "--remote-workers", "1")
    deadline = time.monotonic() + 120
    master = None
    lines = []
    while master is None:
        line = proc.stderr.readline()
        assert line or proc.poll() is None, "".join(lines)
        lines.append(line)
        if "harness worker --master" in line:
            master = line.split("--master", 1)[1].split()[0]
        assert time.monotonic() < deadline
    worker = subprocess.Popen([sys.executable, "-m", "harness.cli", "worker", "--master", master,
                               "--scenario", "mixed"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        _, stderr = proc.communicate(timeout=180)
        assert proc.returncode == 0, stderr
        assert worker.wait(60) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
    _, result = only_result(out)
    assert result["run"]["workers"] == 1 and result["totals"]["count"] > 0
    assert all(abs(e["server_count"] - e["count"]) <= 2 for e in result["endpoints"].values())


def test_two_profiles_side_by_side(state_dir: Path, tmp_path: Path):
    out = tmp_path / "reports"
    proc = harness_run(state_dir, out, "--users", "4", "--spawn-rate", "4", "--duration", "4s",
                       "--warmup", "1s", "--profile", "optimized,naive")
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    profiles = sorted(json.loads((d / "result.json").read_text())["run"]["profile"]
                      for d in (out / "runs").iterdir())
    assert profiles == ["naive", "optimized"]
    assert "side by side" in stdout and "naive / optimized" in stdout
