"""Fixtures and helpers for the Locust plugin and scenario tests.

Locust runs only in child processes (`python -m locust`): importing it here
would monkey-patch pytest's interpreter with gevent. Every child runs in its
own session and is killed with its group when a test ends, passes or fails.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from harness import hdr
from harness.model import intervals
from harness.model.client import (
    ClientDoc,
    ClientWindow,
    LiveStatus,
    load_client,
    load_windows,
    merge_windows,
)
from harness.model.endpoint import endpoint_key, interval_tag, split_endpoint

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = REPO / "scenarios"
HARNESS_ENV = ("HARNESS_MANIFEST", "HARNESS_STUB_URL", "HARNESS_SHAPE", "HARNESS_USERS",
               "HARNESS_SPAWN_RATE", "HARNESS_DURATION_S", "HARNESS_PACE_SCALE", "HARNESS_SEED")


# ---- running Locust ------------------------------------------------------------------

def locust_cmd(locustfile: str, host: str, out: Path | None, manifest: Path | str | None,
               users: int = 2, run_time: str | None = "4s", spawn_rate: float | None = None,
               extra: list[str] | None = None) -> list[str]:
    files = ",".join(str(REPO / f) for f in locustfile.split(","))
    cmd = [sys.executable, "-m", "locust", "-f", files, "--headless", "--only-summary",
           "-u", str(users), "-r", str(spawn_rate or users), "--host", host,
           "--stop-timeout", "5"]
    if run_time:
        cmd += ["-t", run_time]
    if out is not None:
        cmd += ["--harness-out", str(out)]
    if manifest is not None:
        cmd += ["--harness-manifest", str(manifest)]
    return cmd + list(extra or [])


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in HARNESS_ENV}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


@dataclass
class Finished:
    returncode: int
    output: str


class Children:
    """Child processes of one test; all killed (with their groups) on exit."""

    def __init__(self) -> None:
        self.procs: list[tuple[subprocess.Popen, Path]] = []

    def start(self, cmd: list[str], log: Path, cwd: Path | None = None,
              env: dict[str, str] | None = None) -> subprocess.Popen:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "wb") as fh:
            proc = subprocess.Popen(cmd, cwd=cwd or REPO, env=child_env(env), stdout=fh,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append((proc, log))
        return proc

    def wait(self, proc: subprocess.Popen, timeout: float) -> Finished:
        log = next(lg for p, lg in self.procs if p is proc)
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill(proc)
            raise AssertionError(f"{proc.args[:6]} did not finish in {timeout}s:\n"
                                 f"{log.read_text(errors='replace')[-4000:]}") from None
        return Finished(code, log.read_text(errors="replace"))

    @staticmethod
    def kill(proc: subprocess.Popen) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)

    def close(self) -> None:
        for proc, _ in self.procs:
            if proc.poll() is None:
                self.kill(proc)
            else:  # reap anything its group left behind
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture
def children():
    c = Children()
    try:
        yield c
    finally:
        c.close()


def run_locust(cmd: list[str], timeout: float = 60, cwd: Path | None = None,
               env: dict[str, str] | None = None) -> Finished:
    c = Children()
    log = Path(tempfile.mkdtemp(prefix="locust-log-")) / "locust.log"
    try:
        return c.wait(c.start(cmd, log, cwd=cwd, env=env), timeout)
    finally:
        c.close()
        shutil.rmtree(log.parent, ignore_errors=True)


# ---- checking what the plugin wrote ---------------------------------------------------

PHASE_ORDER = ("ramp", "warmup", "measured", "cooldown")


def plugin_windows(out: Path) -> list[ClientWindow]:
    """The plugin's `windows.jsonl` in `out`, one window per second (lines of a second added)."""
    return merge_windows(load_windows(out / "windows.jsonl"))


def assert_plugin_output(out: Path) -> ClientDoc:
    """Everything the plugin wrote into `--harness-out` agrees with itself, exactly.

    `client.json` validates as `ClientDoc`; its histograms hold its counts; the windows
    of `windows.jsonl` have no holes, their phases are in order and on the documented
    edges, and per phase they add up to the document's counts and failures; the
    interval log holds, per endpoint and second, the window's count, and its measured
    seconds re-aggregate, bucket for bucket, to the document's whole-window histograms."""
    doc = load_client(out / "client.json")
    assert doc.schema_version == 2
    assert doc.windows_file == "windows.jsonl" and doc.interval_log == "windows.hlog"
    for key, ep in doc.endpoints.items():
        assert endpoint_key(*split_endpoint(key)) == key, key
        assert hdr.decode(ep.histogram).get_total_count() == ep.count, key
        assert hdr.decode(ep.corrected_histogram).get_total_count() == ep.count, key
        assert sum(ep.failures.values()) <= ep.count, key
    assert doc.checks.degraded_responses == sum(e.degraded for e in doc.endpoints.values())
    assert doc.checks.partial_responses == sum(e.partial for e in doc.endpoints.values())
    assert all(p.role in ("master", "worker", "local") for p in doc.generator.processes)

    windows = merge_windows(load_windows(out / doc.windows_file))
    assert windows, "windows.jsonl holds no window"
    seconds = [w.t for w in windows]
    assert seconds == list(range(seconds[0], seconds[-1] + 1)), "holes in the time series"
    assert doc.started_at is not None and seconds[0] == math.floor(doc.started_at)
    ranks = [PHASE_ORDER.index(w.phase) for w in windows]
    assert ranks == sorted(ranks), [w.phase for w in windows]
    assert doc.measure_from is not None
    if doc.warmup_s > 0:  # the measured window opens on a whole second
        assert doc.measure_from == math.ceil(doc.started_at + doc.warmup_s)
    boundary = math.floor(doc.measure_from)
    cool_from = math.ceil(doc.stopping_at) if doc.stopping_at is not None else math.inf
    for w in windows:
        if w.phase in ("ramp", "warmup"):
            assert w.t < boundary, (w.t, w.phase)
            assert (w.phase == "ramp") == w.spawning, (w.t, w.phase)
        elif w.phase == "measured":
            assert boundary <= w.t < cool_from, (w.t, w.phase)
        else:
            assert w.t >= cool_from, (w.t, w.phase)
        if doc.spawn_complete_at is not None:
            assert w.spawning == (w.t < doc.spawn_complete_at), w.t
    assert set().union(*(w.endpoints for w in windows)) == set(doc.endpoints)

    log = intervals.load(out / doc.interval_log)
    tags = {interval_tag(k, kind) for k in doc.endpoints for kind in ("raw", "corrected")}
    assert log.tags() <= tags, log.tags() - tags
    assert {t for _, t in log.entries} <= set(seconds), "interval-log seconds without a window"
    for key, ep in doc.endpoints.items():
        by_phase: Counter = Counter()
        fail_by_phase: Counter = Counter()
        failures: Counter = Counter()
        for w in windows:
            cell = w.endpoints.get(key)
            n = cell.count if cell else 0
            for kind in ("raw", "corrected"):  # the log holds each window's requests
                assert log.histogram(key, w.t, kind).get_total_count() == n, (key, w.t, kind)
            if cell is None:
                continue
            by_phase[w.phase] += cell.count
            fail_by_phase[w.phase] += sum(cell.failures.values())
            if w.phase == "measured":
                failures.update(cell.failures)
        assert by_phase["measured"] == ep.count, key
        assert by_phase["ramp"] + by_phase["warmup"] == ep.warmup_count, key
        assert by_phase["cooldown"] == ep.cooldown_count, key
        assert dict(failures) == ep.failures, key
        assert fail_by_phase["ramp"] + fail_by_phase["warmup"] == ep.warmup_failures, key
        assert fail_by_phase["cooldown"] == ep.cooldown_failures, key
        measured = [w.t for w in windows if w.phase == "measured"]
        for kind, encoded in (("raw", ep.histogram), ("corrected", ep.corrected_histogram)):
            merged = log.merged(key, measured, kind)  # bucket for bucket
            assert merged.get_total_count() == ep.count, (key, kind)
            assert hdr.encode(merged) == encoded, (key, kind)
    if (out / "live.json").exists():
        LiveStatus.model_validate_json((out / "live.json").read_bytes())
    return doc


def write_manifest(path: Path, users: list[dict]) -> Path:
    path.write_text(json.dumps({"preset": "fake", "seed": 1, "generator_version": 1,
                                "users": users}))
    return path


# ---- a fake dashboard API (and stub) in a thread ---------------------------------------

@dataclass
class FakeApi:
    """Misbehaves on purpose: the overview leaks another tenant's data after 200 ms,
    analytics answers 500, the activity feed is fine, cached (HIT) and degraded."""

    url: str = ""
    manifest: Path | None = None
    users: list[dict] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    posts: list[tuple[str, dict]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def hits(self, method: str, route: str) -> int:
        with self.lock:
            return self.counts[(method, route)]

    def total_hits(self) -> int:
        with self.lock:
            return sum(self.counts.values())


def _handler(api: FakeApi):
    keys = {u["api_key"]: u["user_id"] for u in api.users}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet
            pass

        def _send(self, status: int, body: dict, headers: dict | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _route(self) -> tuple[str, str]:
            path = self.path.split("?", 1)[0]
            if path.startswith("/api/v1/agents/"):
                return path, "/api/v1/agents/{agent_id}"
            return path, path

        def _handle(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}") if length else {}
            path, route = self._route()
            with api.lock:
                api.counts[(method, route)] += 1
                if path.startswith("/__admin"):
                    api.posts.append((path, body))
            if path == "/__admin/faults":
                return self._send(200, {"ok": True})
            auth = self.headers.get("Authorization", "")
            uid = keys.get(auth.removeprefix("Bearer "))
            if uid is None:
                return self._send(401, {"error": {"code": "unauthorized"}})
            if route == "/api/v1/dashboard/overview":
                time.sleep(0.2)
                return self._send(200, {"user_id": uid + 1000, "kpis": {"total_calls": 1}})
            if route == "/api/v1/dashboard/analytics":
                return self._send(500, {"error": {"code": "boom", "message": "fake"}})
            if route == "/api/v1/activity":
                return self._send(200, {"user_id": uid, "items": [], "next_cursor": None,
                                        "degraded": True}, {"X-Cache": "HIT"})
            if route == "/api/v1/agents":
                return self._send(200, {"user_id": uid, "agents": [], "degraded": False})
            if route == "/api/v1/agents/{agent_id}":
                agent = int(path.rsplit("/", 1)[1])
                return self._send(200, {"user_id": uid, "agent": {"agent_id": agent},
                                        "degraded": False})
            if route == "/api/v1/calls" and method == "POST":
                return self._send(201, {"user_id": uid, "call_id": 1})
            return self._send(404, {"error": {"code": "not_found"}})

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

    return Handler


@pytest.fixture
def fake_api(tmp_path: Path):
    api = FakeApi(users=[
        {"user_id": 1, "api_key": "key-one", "agent_ids": [11, 12], "weight": 0.7,
         "elevenlabs_agent_ids": ["agent_11", "agent_12"]},
        {"user_id": 2, "api_key": "key-two", "agent_ids": [21], "weight": 0.3,
         "elevenlabs_agent_ids": ["agent_21"]}])
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(api))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    api.url = f"http://127.0.0.1:{server.server_address[1]}"
    api.manifest = write_manifest(tmp_path / "fake-manifest.json", api.users)
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


# ---- the real stack --------------------------------------------------------------------

@pytest.fixture(scope="session")
def stack():
    """The whole stack (embedded PostgreSQL, stub, target) on the `tiny` dataset, shared.

    State lives outside pytest's tmp_path: pytest chmods its base directory 0700,
    which locks out the embedded server's own OS user when the tests run as root."""
    from harness.stack.stack import Stack, StackConfig

    root = Path(tempfile.mkdtemp(prefix="harness-plugin-tests-"))
    try:
        with Stack(StackConfig(dataset="tiny", state_dir=root / "state",
                               run_dir=root / "run")) as s:
            yield s
    finally:
        shutil.rmtree(root, ignore_errors=True)


def server_counts(target_url: str) -> Counter:
    """`http_request_duration_seconds_count` per "METHOD route" from the service's /metrics."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{target_url}/metrics", timeout=10).text
    out: Counter = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "http_request_duration_seconds_count":
                out[f"{sample.labels['method']} {sample.labels['route']}"] += int(sample.value)
    return out
