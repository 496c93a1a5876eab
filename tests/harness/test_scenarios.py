"""Scenarios and shapes: real Locust runs against the real stack (and a fake API).

The stack runs once per session (tiny dataset). Locust only ever runs as child
processes; each test kills what it started, also when it fails.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

import scenarios
from harness.model.client import LiveStatus
from tests.harness.conftest import (
    PHASE_ORDER,
    REPO,
    assert_plugin_output,
    locust_cmd,
    plugin_windows,
    run_locust,
    server_counts,
)

MIXED_ENDPOINTS = {
    "GET /api/v1/dashboard/overview", "GET /api/v1/dashboard/analytics", "GET /api/v1/activity",
    "GET /api/v1/agents", "GET /api/v1/agents/{agent_id}", "POST /api/v1/calls"}
DASHBOARD_ENDPOINTS = {
    "GET /api/v1/dashboard/overview", "GET /api/v1/dashboard/analytics", "GET /api/v1/activity"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def python(code: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run code in a fresh interpreter (Locust may be imported there, never here)."""
    import os

    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=60, env={**os.environ, **(env or {})})


# ---- the registry the harness reads ---------------------------------------------------

def test_registry_names_locustfiles_without_importing_locust():
    for name, spec in scenarios.SCENARIOS.items():
        assert (REPO / spec.locustfile).is_file(), name
        assert scenarios.locustfile(name).is_file()
    assert scenarios.locustfiles_arg("mixed").endswith("scenarios/mixed.py")
    assert scenarios.locustfiles_arg("mixed", "spike").endswith(
        "scenarios/mixed.py," + str(REPO / "scenarios" / "shapes.py"))
    with pytest.raises(KeyError, match="unknown shape 'square'"):
        scenarios.locustfiles_arg("mixed", "square")
    assert "locust" not in sys.modules and "gevent" not in sys.modules


def test_every_locustfile_loads_and_lists_its_users():
    for name, spec in scenarios.SCENARIOS.items():
        out = subprocess.run([sys.executable, "-m", "locust", "-f", spec.locustfile, "--list",
                              "--harness-stub-url", "http://127.0.0.1:9"],
                             cwd=REPO, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, (name, out.stderr)
        listed = {line.strip() for line in out.stdout.splitlines()[1:]}
        assert listed == set(spec.users), (name, out.stdout)


# ---- shapes ----------------------------------------------------------------------------

def test_shapes_are_listed_and_computed():
    code = """
import json, scenarios
from scenarios.shapes import SHAPES, shape_names, shape_params, resolve
out = {"names": shape_names(), "registry": list(scenarios.SHAPE_NAMES), "ticks": {}}
for name in shape_names():
    shape = resolve(name)()
    p = shape.params()
    out["ticks"][name] = [shape.at(t, p) for t in (0, 10, 45, 55, 79, 95)]
    shape.get_run_time = lambda: 100.0
    out["ticks"][name].append(shape.tick())
print(json.dumps(out))
"""
    proc = python(code, {"HARNESS_USERS": "10", "HARNESS_SPAWN_RATE": "2",
                         "HARNESS_DURATION_S": "100"})
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["names"] == out["registry"] == ["steady", "ramp", "spike", "soak"]
    ticks = out["ticks"]
    assert ticks["steady"] == [[10, 2.0]] * 6 + [None]
    assert ticks["soak"] == [[10, 2.0]] * 6 + [None]
    ramp_users = [t[0] for t in ticks["ramp"][:-1]]
    assert ramp_users == sorted(ramp_users) and ramp_users[0] == 1 and ramp_users[-1] == 10
    assert [t[0] for t in ticks["spike"][:-1]] == [2, 2, 10, 10, 2, 2]
    assert ticks["ramp"][-1] is None and ticks["spike"][-1] is None


@pytest.mark.e2e
@pytest.mark.parametrize(("args", "env", "message"), [
    (["--harness-shape", "square"], {}, ("unknown shape 'square'; choose from steady, ramp, "
                                         "spike, soak")),
    ([], {"HARNESS_SHAPE": "zigzag"}, "unknown shape 'zigzag'"),
    (["--harness-shape", "spike"], {"HARNESS_USERS": "many"}, "HARNESS_USERS='many' is not"),
])
def test_bad_shape_is_one_clear_line_and_exit_2(fake_api, tmp_path, args, env, message):
    proc = run_locust(locust_cmd("scenarios/dashboard.py,scenarios/shapes.py", fake_api.url,
                                 tmp_path / "o", fake_api.manifest, extra=args), env=env)
    assert proc.returncode == 2, proc.output
    assert message in proc.output
    assert "Traceback" not in proc.output
    assert fake_api.total_hits() == 0


@pytest.mark.e2e
def test_shape_is_selected_by_name_and_ends_the_run(fake_api, tmp_path):
    """No -t: the spike shape (5 users, 6 s) drives the users and stops the test itself."""
    out = tmp_path / "out"
    cmd = locust_cmd(scenarios.locustfiles_arg("dashboard", "spike"), fake_api.url, out,
                     fake_api.manifest, users=1, run_time=None,
                     extra=["--harness-shape", "spike", "--exit-code-on-error", "0"])
    proc = run_locust(cmd, timeout=60, env={"HARNESS_USERS": "5", "HARNESS_DURATION_S": "6"})
    assert proc.returncode == 0, proc.output
    assert "Shape test stopping" in proc.output
    doc = assert_plugin_output(out)
    assert doc.shape == "HarnessShape"
    users = [w.users for w in plugin_windows(out) if w.phase != "cooldown"]
    assert min(users) == 1 and max(users) == 5, users  # 20% baseline, then the spike
    assert users.index(5) >= 2
    assert doc.ended_at - doc.started_at == pytest.approx(6, abs=1.5)


# ---- upstream faults (against a fake stub) --------------------------------------------

@pytest.mark.e2e
def test_upstream_faults_switches_the_stub_and_records_events(fake_api, tmp_path):
    out = tmp_path / "out"
    cmd = locust_cmd("scenarios/upstream_faults.py", fake_api.url, out, fake_api.manifest,
                     users=2, run_time="4s",
                     extra=["--harness-stub-url", fake_api.url, "--exit-code-on-error", "0"])
    proc = run_locust(cmd, timeout=60)
    assert proc.returncode == 0, proc.output
    doc = assert_plugin_output(out)
    faults = [e for e in doc.events if e.name.startswith("faults:")]
    assert [e.name for e in faults] == [
        "faults:healthy", "faults:flaky", "faults:outage", "faults:healthy"]
    assert all(e.ok and e.error is None for e in faults)
    offsets = [e.t - doc.started_at for e in faults]
    assert offsets == pytest.approx([0, 1, 2, 3], abs=0.5)
    phases = {e.name: e.t for e in doc.events if not e.name.startswith("faults:")}
    assert phases == {"phase:ramp": doc.started_at, "phase:measured": doc.measure_from,
                      "spawning_complete": doc.spawn_complete_at,
                      "phase:cooldown": doc.stopping_at}
    assert [e.t for e in doc.events] == sorted(e.t for e in doc.events)
    assert [b["preset"] for path, b in fake_api.posts if path == "/__admin/faults"] == [
        "healthy", "flaky", "outage", "healthy"]


@pytest.mark.e2e
def test_upstream_faults_without_stub_is_a_clear_error(fake_api, tmp_path):
    proc = run_locust(locust_cmd("scenarios/upstream_faults.py", fake_api.url, tmp_path / "o",
                                 fake_api.manifest))
    assert proc.returncode == 2, proc.output
    assert "upstream_faults needs the ElevenLabs stub" in proc.output
    assert "Traceback" not in proc.output


# ---- the real stack --------------------------------------------------------------------

@pytest.mark.e2e
def test_local_run_of_mixed_records_every_endpoint(stack, tmp_path):
    out = tmp_path / "out"
    cmd = locust_cmd("scenarios/mixed.py", stack.info.target_url, out, stack.info.manifest,
                     users=20, run_time="8s",
                     extra=["--harness-warmup", "2", "--harness-seed", "7"])
    proc = run_locust(cmd, timeout=90)
    assert proc.returncode == 0, proc.output
    doc = assert_plugin_output(out)
    assert doc.role == "local" and doc.locustfiles.endswith("scenarios/mixed.py")
    assert doc.host == stack.info.target_url
    assert set(doc.endpoints) == MIXED_ENDPOINTS
    for name, ep in doc.endpoints.items():
        assert ep.count > 0, name
        assert ep.failures == {} and ep.warmup_failures == ep.cooldown_failures == 0, name
    assert doc.shape is None and doc.workers == 0 and doc.incomplete_workers == []
    assert doc.warmup_s == 2.0
    assert doc.measure_from == pytest.approx(doc.started_at + 2, abs=1.0)
    assert doc.ended_at - doc.started_at == pytest.approx(8, abs=1.0)
    windows = plugin_windows(out)
    phases = [w.phase for w in windows]
    assert phases[0] == "ramp" and "warmup" in phases and "measured" in phases
    assert phases == sorted(phases, key=PHASE_ORDER.index)
    assert max(w.users for w in windows) == 20
    assert doc.checks.tenant_leaks == 0 and doc.checks.unexpected_statuses == {}
    # 20 users of weights 70/25/5: 14 dashboard and 5 agents users at 0.5 tasks/s, one
    # writer at 0.2: 9.7 intended task starts a second, which the service keeps up with
    assert doc.pacing.intended_rps == pytest.approx(9.7, rel=0.15), doc.pacing
    assert doc.pacing.shortfall_ratio < 0.1, doc.pacing
    assert [p.role for p in doc.generator.processes] == ["local"]
    assert doc.generator.processes[0].requests == sum(
        e.count + e.warmup_count + e.cooldown_count for e in doc.endpoints.values())
    assert set(doc.server_window) == {"start", "end"}
    for edge in ("start", "end"):
        assert "http_request_duration_seconds" in (
            out / "metrics" / f"window-{edge}.prom").read_text()
    live = LiveStatus.model_validate_json((out / "live.json").read_bytes())
    assert live.phase == "stopping" and live.started_at == doc.started_at
    assert not [p for p in out.rglob("*.tmp")]


@pytest.mark.e2e
def test_distributed_run_merges_exactly(stack, tmp_path, children):
    """Master + 2 workers: merged count == sum of the workers' own counts == what the
    service counted. Workers are started where the manifest path does not exist, so they
    use the master's copy; --harness-* options reach them from the master."""
    master_dir, worker_dir, out = tmp_path / "master", tmp_path / "worker", tmp_path / "out"
    master_dir.mkdir()
    worker_dir.mkdir()
    shutil.copy(stack.info.manifest, master_dir / "dataset.json")
    port = free_port()
    target = stack.info.target_url
    before = server_counts(target)
    master = children.start(
        locust_cmd("scenarios/dashboard.py", target, out, "dataset.json", users=10,
                   run_time="8s", extra=["--harness-warmup", "2", "--master",
                                         "--expect-workers", "2", "--master-bind-host",
                                         "127.0.0.1", "--master-bind-port", str(port)]),
        tmp_path / "master.log", cwd=master_dir)
    workers = [children.start(
        [sys.executable, "-m", "locust", "-f", str(REPO / "scenarios/dashboard.py"),
         "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)],
        tmp_path / f"worker{i}.log", cwd=worker_dir) for i in range(2)]
    result = children.wait(master, timeout=90)
    worker_logs = [children.wait(w, timeout=30).output for w in workers]
    after = server_counts(target)
    assert result.returncode == 0, result.output

    doc = assert_plugin_output(out)
    assert doc.role == "master"
    assert set(doc.endpoints) == DASHBOARD_ENDPOINTS
    assert doc.workers == 2 and doc.incomplete_workers == []
    merged = sum(ep.count + ep.warmup_count + ep.cooldown_count
                 for ep in doc.endpoints.values())
    per_worker = []
    for log in worker_logs:
        line = next(ln for ln in log.splitlines() if "final report of this worker" in ln)
        per_worker.append(int(line.split("worker: ")[1].split()[0]))
    served = {k: after[k] - before.get(k, 0) for k in DASHBOARD_ENDPOINTS}
    assert all(n > 0 for n in per_worker), per_worker
    assert merged == sum(per_worker) == sum(served.values()), (merged, per_worker, served)
    for name, ep in doc.endpoints.items():  # per endpoint too
        assert ep.count + ep.warmup_count + ep.cooldown_count == served[name], name
    windows = plugin_windows(out)  # and in the time series
    assert sum(c.count for w in windows for c in w.endpoints.values()) == merged
    procs = doc.generator.processes
    assert [p.role for p in procs] == ["master", "worker", "worker"]
    assert sorted(p.requests for p in procs if p.role == "worker") == sorted(per_worker)
    assert all(p.samples > 0 and p.cpu_max is not None for p in procs)
    assert max(w.users for w in windows) == 10
    assert any(ep.warmup_count > 0 for ep in doc.endpoints.values())


@pytest.mark.e2e
def test_sigterm_to_every_process_still_writes_exact_results(stack, tmp_path, children):
    """The harness's Ctrl-C path: live progress while running, then SIGTERM to the master
    and both workers at once; what was measured is written and still adds up."""
    out = tmp_path / "out"
    port = free_port()
    target = stack.info.target_url
    before = server_counts(target)
    procs = [children.start(
        locust_cmd("scenarios/agents.py", target, out, stack.info.manifest, users=6,
                   run_time="60s", extra=["--harness-pace-scale", "4", "--master",
                                          "--expect-workers", "2", "--master-bind-host",
                                          "127.0.0.1", "--master-bind-port", str(port)]),
        tmp_path / "master.log")]
    procs += [children.start(
        [sys.executable, "-m", "locust", "-f", str(REPO / "scenarios/agents.py"), "--worker",
         "--master-host", "127.0.0.1", "--master-port", str(port)],
        tmp_path / f"worker{i}.log") for i in range(2)]
    live = {}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (live.get("rps") and live.get("endpoints")):
        time.sleep(0.2)
        if (out / "live.json").exists():
            live = json.loads((out / "live.json").read_text())
    assert live.get("phase") == "measured" and live["users"] == 6, live
    LiveStatus.model_validate(live)
    assert set(live["endpoints"]) <= {"GET /api/v1/agents", "GET /api/v1/agents/{agent_id}"}
    for ep in live["endpoints"].values():
        assert ep["rps"] > 0 and ep["p95_ms"] > 0 and ep["error_rate"] == 0
    for p in procs:
        p.send_signal(signal.SIGTERM)
    results = [children.wait(p, timeout=60) for p in procs]
    assert results[0].returncode == 0, results[0].output
    after = server_counts(target)
    doc = assert_plugin_output(out)
    assert doc.incomplete_workers == [] and doc.workers == 2
    merged = sum(ep.count + ep.warmup_count + ep.cooldown_count
                 for ep in doc.endpoints.values())
    served = sum(after[k] - before.get(k, 0) for k in doc.endpoints)
    assert merged == served > 0
    windows = plugin_windows(out)
    assert sum(c.count for w in windows for c in w.endpoints.values()) == merged
    # no --harness-warmup: every second up to the stop is measured, from the first spawn on
    assert doc.warmup_s == 0 and windows[0].phase == "measured"
    assert {w.phase for w in windows} <= {"measured", "cooldown"}
    assert all(ep.warmup_count == 0 for ep in doc.endpoints.values())
