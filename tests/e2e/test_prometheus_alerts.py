"""The exported alert rules in a real Prometheus, scraping the real service in an outage.

A healthy `tiny` run is saved as the baseline; `harness alerts export --for-scale 0`
turns it into rules (every `for` 0 s: a test cannot wait the production 2 to 15
minutes; the windows stay the workbook's, and a `rate()` over `[1h]` with a minute
of samples is the ratio over that minute, so the same expressions are exercised).
Then `harness stack up --faults outage` (the ElevenLabs stub answers 503 to
everything), Debian's `prometheus` on a free port of 127.0.0.1 with a temporary
storage directory, scraping the target every second and evaluating every second,
while plain httpx requests hit the agents endpoints (which call ElevenLabs) and the
dashboard endpoints (which do not). Through Prometheus' HTTP API: every rule
evaluates without error, the ElevenLabs failure alert (and the breaker's) fires,
and the latency and error alerts of the healthy endpoints stay quiet while their
SLO ratios are computed (so their `le` matched the service's series). Every
process the test starts is stopped, and checked gone.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Self

import httpx
import psutil
import pytest
import yaml

from harness.stack.process import ManagedProcess, free_port
from tests.e2e.test_gate import harness
from tests.e2e.test_run import harness_run

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("prometheus") is None or shutil.which("promtool") is None,
                       reason="needs Debian's prometheus package (apt-get install prometheus; "
                              ".ci/run installs it)"),
]

HEALTHY = ("/api/v1/dashboard/overview", "/api/v1/dashboard/analytics", "/api/v1/activity")
UPSTREAM = ("/api/v1/agents", "/api/v1/agents/{agent_id}")
BASELINE_LOAD = ("--scenario", "mixed", "--users", "10", "--spawn-rate", "10",
                 "--duration", "20s", "--warmup", "5s")
FIRING_TIMEOUT_S = 90
SETTLE_S = 20
"""Load after the failure alert fired before the quiet is watched: with every `for` at 0 s
the windows start from the first scrape, and a window of the first ten requests turns one
slow request into a 10% error ratio; after this each healthy endpoint's windows hold
about a hundred requests."""
QUIET_FOR_S = 15
"""How long the healthy endpoints must then stay quiet while the failure alert fires."""
POLICY_CHANGE = ("latency_objective = 0.99", "latency_objective = 0.95")
"""The committed policy but for this: 95% of requests under the p99-derived T. A 20 s
baseline's p99 rests on ~50 requests per endpoint (the export notes it), so by chance
alone 1-2% of another run's requests are slower: at the production 99% (a 1% budget)
the 1x ticket would be a coin toss; 95% leaves the margin this length of baseline
supports."""


def prom_get(base: str, path: str, **params: str) -> dict:
    r = httpx.get(f"{base}{path}", params=params, timeout=10)
    r.raise_for_status()
    body = r.json()
    assert body["status"] == "success", body
    return body["data"]


def alerts_now(base: str) -> list[dict]:
    return prom_get(base, "/api/v1/alerts")["alerts"]


class Load:
    """Requests on a thread until stopped: every endpoint, as the busiest user."""

    def __init__(self, target: str, manifest: dict) -> None:
        self.target = target
        self.users = manifest["users"]
        self.stop = threading.Event()
        self.statuses: dict[str, dict[int, int]] = {}
        self.errors: list[str] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def round(self, client: httpx.Client) -> None:
        user = random.Random(len(self.statuses)).choice(self.users)
        headers = {"Authorization": f"Bearer {user['api_key']}"}
        paths = [*HEALTHY, "/api/v1/agents",
                 *(f"/api/v1/agents/{a}" for a in user["agent_ids"][:2])]
        for path in paths:
            status = client.get(path, headers=headers).status_code
            route = "/api/v1/agents/{agent_id}" if path.startswith("/api/v1/agents/") else path
            counts = self.statuses.setdefault(route, {})
            counts[status] = counts.get(status, 0) + 1

    def _run(self) -> None:
        with httpx.Client(base_url=self.target, timeout=15) as client:
            while not self.stop.is_set():
                try:
                    self.round(client)
                except httpx.HTTPError as exc:  # said at the end, not lost with the thread
                    self.errors.append(repr(exc))
                    self.stop.wait(0.5)

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(30)


def start_prometheus(tmp: Path, metrics_url: str, rules: Path) -> tuple[ManagedProcess, str]:
    target = httpx.URL(metrics_url)
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s",
                   "scrape_timeout": "1s"},
        "rule_files": [str(rules)],
        "scrape_configs": [{"job_name": "dashboard-api", "metrics_path": target.path,
                            "static_configs": [{"targets": [f"{target.host}:{target.port}"]}]}],
    }
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    proc = ManagedProcess("prometheus", [
        "prometheus", f"--config.file={tmp / 'prometheus.yml'}",
        f"--storage.tsdb.path={tmp / 'prometheus-data'}",
        f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn",
    ], tmp / "prometheus.log").start()
    base = f"http://127.0.0.1:{port}"
    proc.wait_until(lambda: httpx.get(f"{base}/-/ready", timeout=1).status_code == 200, 60,
                    "ready")
    return proc, base


def stop_all(procs: list[ManagedProcess]) -> None:
    """Stop each process and everything it started; fail if anything is left."""
    left = []
    for proc in procs:
        tree = []
        if proc.alive:
            try:
                tree = psutil.Process(proc.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                pass
        proc.stop(timeout=60)
        _, alive = psutil.wait_procs(tree, timeout=15)
        left += [p for p in alive if p.is_running()]
    assert not left, [p.cmdline() for p in left]


def test_a_real_prometheus_fires_the_upstream_alert_and_healthy_endpoints_stay_quiet(
        state_dir: Path, tmp_path: Path):
    started = time.monotonic()
    out, store = tmp_path / "reports", tmp_path / "baselines"
    run = harness_run(state_dir, out, *BASELINE_LOAD)
    _, stderr = run.communicate(timeout=300)
    assert run.returncode == 0, stderr
    saved = harness("baseline", "save", "latest", "--name", "healthy", "--store", str(store),
                    "--out", str(out), cwd=tmp_path)
    assert saved.returncode == 0, saved.stderr
    rules, policy = tmp_path / "alerts.yml", tmp_path / "policy.toml"
    committed = (ROOT / "baselines" / "policy.toml").read_text()
    assert POLICY_CHANGE[0] in committed
    policy.write_text(committed.replace(*POLICY_CHANGE))
    exported = subprocess.run(
        [sys.executable, "-m", "harness.cli", "alerts", "export", "--baseline", "healthy",
         "--store", str(store), "--policy", str(policy), "--for-scale", "0", "-o", str(rules)],
        cwd=tmp_path, capture_output=True, text=True, check=False, timeout=120)
    assert exported.returncode == 0, exported.stderr
    checked = subprocess.run(["promtool", "check", "rules", str(rules)], capture_output=True,
                             text=True, check=False, timeout=120)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    doc = yaml.safe_load(rules.read_text())
    assert {r["for"] for g in doc["groups"] for r in g["rules"] if "alert" in r} == {"0s"}
    latency = {r["labels"]["route"] for g in doc["groups"] for r in g["rules"]
               if r.get("record") == "slo:sli_error:ratio_rate5m"
               and r["labels"]["slo"] == "latency"}
    assert set(HEALTHY) | set(UPSTREAM) <= latency, sorted(latency)
    baseline_s = time.monotonic() - started

    stack = ManagedProcess("stack", [
        sys.executable, "-m", "harness.cli", "stack", "up", "--dataset", "tiny",
        "--faults", "outage", "--json", "--state-dir", str(state_dir)],
        tmp_path / "stack.log", cwd=tmp_path).start()
    procs = [stack]
    try:
        info: dict = {}

        def ready() -> bool:
            for line in (tmp_path / "stack.log").read_text().splitlines():
                if line.startswith("{"):
                    info.update(json.loads(line))
                    return True
            return False

        stack.wait_until(ready, 180, "ready")
        manifest = json.loads(Path(info["manifest"]).read_text())
        load = Load(info["target_url"], manifest)
        with httpx.Client(base_url=info["target_url"], timeout=15) as client:
            for _ in range(3):  # cold caches and first connections before the first scrape
                load.round(client)
        prometheus, base = start_prometheus(tmp_path, info["metrics_url"], rules)
        procs.insert(0, prometheus)
        with load:
            firing_at = wait_for(base, "ElevenLabsFailureRatioHigh", FIRING_TIMEOUT_S)
            time.sleep(SETTLE_S)
            fired_s = time.monotonic() - firing_at[1]
            seen: list[dict] = []
            deadline = time.monotonic() + QUIET_FOR_S
            while time.monotonic() < deadline:
                seen += alerts_now(base)
                time.sleep(1)
        groups = prom_get(base, "/api/v1/rules")["groups"]
        bad = [(r["name"], r.get("lastError")) for g in groups for r in g["rules"]
               if r["health"] != "ok"]
        assert not bad, bad[:5]
        assert sum(len(g["rules"]) for g in groups) == sum(len(g["rules"])
                                                          for g in doc["groups"])
        # the healthy endpoints' SLO ratios exist: their le is one the service exports
        for route in HEALTHY:
            for kind in ("latency", "errors"):
                result = prom_get(base, "/api/v1/query", query=(
                    f'slo:sli_error:ratio_rate5m{{slo="{kind}",route="{route}"}}'))["result"]
                assert len(result) == 1, (kind, route, result)
                assert float(result[0]["value"][1]) < 0.5, (kind, route, result)
        names = {(a["labels"]["alertname"], a["state"]) for a in seen}
        assert ("ElevenLabsFailureRatioHigh", "firing") in names, names
        assert ("ElevenLabsCircuitBreakerOpen", "firing") in names, names
        noisy = [(a["labels"]["alertname"], a["labels"]["route"], a["labels"]["long_window"],
                  a["state"], a["value"]) for a in seen
                 if a["labels"]["alertname"] in ("EndpointLatencyBudgetBurn",
                                                 "EndpointErrorBudgetBurn")
                 and a["labels"]["route"] in HEALTHY]
        if noisy:  # what the thresholds were, and the buckets the run really saw
            told = {r["labels"]["route"]: r["annotations"]["derivation"]
                    for g in doc["groups"] for r in g["rules"]
                    if r.get("alert") == "EndpointLatencyBudgetBurn"}
            buckets = {route: {s["metric"]["le"]: s["value"][1] for s in prom_get(
                base, "/api/v1/query", query=f'sum by (le) (increase(http_request_duration'
                f'_seconds_bucket{{route="{route}"}}[5m]))')["result"]} for route in HEALTHY}
            raise AssertionError(f"{noisy[:4]}; thresholds {told}; buckets {buckets}")
        # the healthy endpoints answered; the agents pages degraded instead of failing
        assert not load.errors, load.errors[:5]
        for route in (*HEALTHY, *UPSTREAM):
            assert set(load.statuses.get(route, {})) == {200}, (route, load.statuses)
        print(f"\nbaseline run and export {baseline_s:.0f} s; failure alert firing "
              f"{firing_at[0]:.1f} s after Prometheus started; quiet watched {QUIET_FOR_S} s "
              f"from {fired_s:.0f} s after it fired; alerts seen: {sorted(names)}; "
              f"requests: {load.statuses}")
    finally:
        stop_all(procs)


def wait_for(base: str, alertname: str, timeout: float) -> tuple[float, float]:
    """Until `alertname` fires: (seconds it took, when)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if any(a["labels"]["alertname"] == alertname and a["state"] == "firing"
               for a in alerts_now(base)):
            return time.monotonic() - start, time.monotonic()
        time.sleep(0.5)
    raise AssertionError(f"{alertname} did not fire in {timeout:.0f} s: {alerts_now(base)}")
