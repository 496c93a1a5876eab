"""`harness run --chaos SPEC`: every malformed or impossible SPEC is one line and exit 2
before anything starts; a paused process tree is always continued."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil
import pytest

from harness import cli
from harness.run import runner
from harness.stack.chaos import Chaos, ChaosTarget, Pause
from tests.harness.test_abort_cli import NoRun, harness


@pytest.fixture(autouse=True)
def keep_pytests_signal_handlers(monkeypatch):
    monkeypatch.setattr(cli.signal, "signal", lambda *_: None)


@pytest.mark.parametrize("spec, words", [
    ("", "no fault given"),
    ("db-restart", "expected KIND@START"),
    ("db-explode@10s", "unknown fault 'db-explode'"),
    ("db-restart@soon", "is not a time"),
    ("db-restart@10s:5s", "instantaneous"),
    ("db-pause@10s", "needs a duration"),
    ("db-pause@10s:0s", "must be positive"),
    ("stub@10s:5s", "names its preset"),
    ("db-disconnect:flaky@10s", "only stub faults take a :PRESET"),
    ("db-pause@10s:5s,db-pause@12s:5s", "overlap"),
    ("stub:nonsense@10s:5s", "unknown stub preset 'nonsense'"),
    ("db-restart@60s", "within the measured window"),
    ("stub:flaky@50s:20s", "within the measured window"),
    ("db-pause@10s:5s,db-restart@12s", "cannot be restarted"),
])
def test_a_bad_spec_is_one_line_exit_2_and_nothing_starts(monkeypatch, capsys, tmp_path,
                                                          spec, words):
    monkeypatch.setattr(runner, "Run", NoRun)
    out = tmp_path / "reports"
    code, lines = harness(monkeypatch, capsys, "run", "--dataset", "tiny", "--out", str(out),
                          "--state-dir", str(tmp_path / "state"), "--duration", "60s",
                          "--chaos", spec)
    assert code == 2, lines
    assert len(lines) == 1 and lines[0].startswith("error: --chaos") and words in lines[0]
    assert not out.exists() and not (tmp_path / "state").exists()


@pytest.mark.parametrize("kind", ["db-restart@10s", "db-pause@10s:5s"])
def test_server_faults_are_refused_on_an_external_database(monkeypatch, capsys, tmp_path,
                                                           kind):
    monkeypatch.setattr(runner, "Run", NoRun)
    code, lines = harness(monkeypatch, capsys, "run", "--out", str(tmp_path / "r"),
                          "--database-url", "postgresql://u@127.0.0.1:1/db", "--chaos", kind)
    assert code == 2 and len(lines) == 1 and "needs the embedded database" in lines[0]


@pytest.fixture
def tree():
    """A parent with a child (a stand-in for a postmaster and its backends)."""
    code = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', " \
           "'import time; time.sleep(60)']); time.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", code])
    root = psutil.Process(proc.pid)
    deadline = time.monotonic() + 10
    while not root.children() and time.monotonic() < deadline:
        time.sleep(0.05)
    yield root
    for p in [*root.children(recursive=True), root]:
        p.kill()
    proc.wait(5)


def states(root: psutil.Process) -> set[str]:
    return {p.status() for p in [root, *root.children(recursive=True)]}


def settles(predicate, timeout: float = 10.0) -> bool:
    """A signal is delivered when its target is next scheduled, not when kill() returns:
    on a busy machine a process reads `running` for a moment after SIGSTOP."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_pause_stops_the_whole_tree_and_continues_it(tree):
    pause = Pause(tree.pid)
    assert pause.suspend() == 2
    assert settles(lambda: states(tree) == {psutil.STATUS_STOPPED}), states(tree)
    assert pause.resume() == 2
    assert settles(lambda: psutil.STATUS_STOPPED not in states(tree)), states(tree)
    assert pause.resume() == 2  # twice is harmless


class FakeServer:
    def __init__(self, pid: int) -> None:
        self.pid = pid

    def postmaster_pid(self) -> int:
        return self.pid


def test_a_run_stopped_during_a_pause_continues_the_server(tree):
    target = ChaosTarget(admin_dsn="", database="x", embedded=FakeServer(tree.pid),
                         target_pid=lambda: None, target_workers=1,
                         restart_target=lambda: 0, stub_url=None, stub_preset="healthy")
    from harness.model.chaos import parse_chaos
    chaos = Chaos(parse_chaos("db-pause@0s:60s,db-restart@50s"), target)
    chaos.start(time.time())
    assert settles(lambda: states(tree) == {psutil.STATUS_STOPPED}), states(tree)
    records = chaos.stop()  # what an interrupted run's teardown does
    assert settles(lambda: psutil.STATUS_STOPPED not in states(tree)), states(tree)
    pause, restart = records
    assert pause.ok and pause.ended_at is not None and "ended early" in pause.detail
    assert not restart.ok and restart.started_at is None and "not injected" in restart.error
