"""`harness run` across machines, on one: a worker that joins from "elsewhere".

On Linux every 127.x.y.z is loopback, so binding the Locust master and the target
to 127.0.0.2 is a second machine's address in miniature: a worker that is handed
127.0.0.1 (the bug this guards against) finds nothing there, and the harness's own
readiness checks and scrapes must use the bound address too. The run waits for
one remote worker; the test reads the `harness worker --master ...` line the run
prints, starts exactly that command as a separate process, from a directory that
holds nothing of the run, and checks that the run completes, that the target
listened on 127.0.0.2 only, and that the requests in `result.json` are exactly the
ones the worker sent and the service counted. About a minute, seeding included.
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from harness.model.client import load_client
from tests.e2e.test_run import only_result
from tests.e2e.test_target_workers import by_endpoint

pytestmark = pytest.mark.e2e
HOST = "127.0.0.2"
USERS = 10
REPO = Path(__file__).resolve().parents[2]


def bindable(host: str) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, 0))
        except OSError:
            return False
    return True


def port_free_on(*hosts: str) -> int:
    """A port nothing listens on at any of `hosts` (so 127.0.0.1:PORT stays silent)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((hosts[0], 0))
            port = s.getsockname()[1]
        if all(_free(h, port) for h in hosts[1:]):
            return port
    raise AssertionError(f"no port free on all of {hosts}")


def _free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def listening_ips(port: int) -> set[str]:
    """The addresses a TCP socket listens on at `port` (from /proc/net: any user's)."""
    return {c.laddr.ip for c in psutil.net_connections(kind="tcp")
            if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port}


def refused(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


class Started:
    """The processes this test starts, each with its log; all ended on the way out."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []
        self.descendants: list[psutil.Process] = []

    def start(self, argv: list[str], log: Path, cwd: Path) -> subprocess.Popen:
        with open(log, "wb") as fh:
            proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, cwd=cwd)
        self.procs.append(proc)
        return proc

    def remember_descendants(self) -> None:
        """The stack and Locust processes under each started process, while they run."""
        for proc in self.procs:
            with contextlib.suppress(psutil.Error):
                self.descendants += psutil.Process(proc.pid).children(recursive=True)

    def close(self) -> None:
        """SIGTERM first (the harness tears its stack down on it), SIGKILL what is left;
        then anything those processes started and left behind."""
        for proc in reversed(self.procs):  # the worker first, then the run
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(90)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)
        _, alive = psutil.wait_procs(self.descendants, timeout=15)
        for left in alive:
            with contextlib.suppress(psutil.Error):
                left.kill()


@pytest.fixture
def started():
    s = Started()
    try:
        yield s
    finally:
        s.close()


def wait_for(predicate, timeout: float, what: str, logs: list[Path]) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            tails = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                              for p in logs if p.exists())
            raise AssertionError(f"{what} not within {timeout:.0f}s\n{tails}")
        time.sleep(0.2)


def test_a_remote_worker_drives_a_target_bound_to_another_address(state_dir: Path,
                                                                   tmp_path: Path,
                                                                   started: Started):
    if not bindable(HOST):
        pytest.skip(f"cannot bind {HOST} here (not Linux's 127/8 loopback)")
    out, elsewhere = tmp_path / "reports", tmp_path / "worker-machine"
    elsewhere.mkdir()
    run_log, worker_log = tmp_path / "run.log", tmp_path / "worker.log"
    port = port_free_on(HOST, "127.0.0.1")
    run = started.start(
        [sys.executable, "-m", "harness.cli", "run", "--dataset", "tiny",
         "--state-dir", str(state_dir), "--out", str(out), "--scenario", "mixed",
         "--users", str(USERS), "--spawn-rate", str(USERS), "--duration", "20s",
         "--warmup", "2s", "--workers", "0", "--remote-workers", "1",
         "--master-bind-host", HOST, "--port", str(port)], run_log, cwd=REPO)

    line = re.compile(r"waiting for 1 remote worker\(s\): (harness worker --master (\S+) .*)")
    found: list[re.Match] = []

    def announced() -> bool:
        assert run.poll() is None, run_log.read_text(errors="replace")
        found[:] = [m for m in map(line.search, run_log.read_text(errors="replace")
                                   .splitlines()) if m]
        return bool(found)

    wait_for(announced, 180, "the 'harness worker --master' line", [run_log])
    command, master = found[0].group(1).split(), found[0].group(2)
    assert master.startswith(f"{HOST}:"), command  # the advertised address, never 0.0.0.0
    assert command[:2] == ["harness", "worker"] and "--scenario" in command
    worker = started.start([sys.executable, "-m", "harness.cli", *command[1:]], worker_log,
                           cwd=elsewhere)

    # the load flows: the master's plugin writes live figures once the worker joined
    wait_for(lambda: bool(list(out.glob("runs/*/live.json"))), 60, "the load",
             [run_log, worker_log])
    started.remember_descendants()
    assert httpx.get(f"http://{HOST}:{port}/healthz", timeout=5).status_code == 200
    assert refused("127.0.0.1", port), "the target answered on 127.0.0.1 too"
    assert listening_ips(port) == {HOST}
    assert listening_ips(int(master.rsplit(":", 1)[1])) == {HOST}  # the master as well

    assert run.wait(240) == 0, run_log.read_text(errors="replace")[-4000:]
    assert worker.wait(60) == 0, worker_log.read_text(errors="replace")[-4000:]

    run_dir, result = only_result(out)
    assert result["run"]["status"] == "complete" and result["run"]["workers"] == 1
    client_doc = load_client(run_dir / "client.json")
    assert client_doc.host == f"http://{HOST}:{port}"  # what the worker was handed
    assert client_doc.workers == 1 and client_doc.incomplete_workers == []

    # what the worker says it sent is what the record holds, and what the service counted
    said = re.search(r"final report of this worker: (\d+) requests", worker_log.read_text())
    assert said, worker_log.read_text(errors="replace")[-4000:]
    client = {key: e["warmup_count"] + e["count"] + e["cooldown_count"]
              for key, e in result["endpoints"].items()}
    assert sum(client.values()) == int(said.group(1)) > 2 * USERS, (client, said.group(0))
    workers = [p for p in client_doc.generator.processes if p.role == "worker"]
    assert len(workers) == 1 and workers[0].requests == int(said.group(1))

    server = by_endpoint((run_dir / "metrics" / "window-end.prom").read_text())
    assert {key: server.get(key, 0) for key in client} == client  # exactly, per endpoint
    # the harness's own readiness and scrapes, and this test's /healthz probe above
    assert ({key for key in server if key not in client}
            <= {"GET /metrics", "GET /readyz", "GET /healthz"})
    for key, e in result["endpoints"].items():  # the window: up to one in flight per user
        assert abs(e["server_count"] - e["count"] - e["cooldown_count"]) <= USERS, key
    assert result["agreement"]["diff_ratio"] <= USERS / result["agreement"]["client_count"]
    assert not result["server"]["failed_scrapes"]
    assert json.loads((run_dir / "dataset.json").read_text())["users"]
