"""ManagedProcess: CPU pinning from the parent, die-with-parent without preexec_fn, a stop
that never raises. Real processes (sleep, sh, python), no stack."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from harness.errors import ComponentFailed, Interrupted, UsageError
from harness.stack import process
from harness.stack.process import ManagedProcess, parse_cpus

REPO = Path(__file__).resolve().parents[2]
TOUCH = shutil.which("touch") or "/usr/bin/touch"
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")


def wait_for(predicate, timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError(f"no {what} within {timeout}s")


def running_as(pid: int, name: str) -> bool:
    """True once the wrapper has exec'd into the real program. The kernel names the
    process before it lays out the new argv, so for a moment mid-exec the name is the
    program's and the command line still empty: wait for both."""
    try:
        proc = psutil.Process(pid)
        return proc.name() == name and bool(proc.cmdline())
    except psutil.NoSuchProcess:
        return False


def gone(proc: psutil.Process) -> bool:
    """Exited (a zombie waiting for a reaper counts: it runs nothing any more)."""
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def start_ignoring_sigterm(tmp_path: Path) -> ManagedProcess:
    code = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('ready', flush=True); time.sleep(600)")
    mp = ManagedProcess("stubborn", [sys.executable, "-c", code], tmp_path / "stubborn.log")
    mp.start()
    wait_for(lambda: "ready" in mp.log_path.read_text(), what="SIGTERM handler installed")
    return mp


@pytest.fixture
def cleanup():
    started: list[ManagedProcess] = []
    yield started.append
    for mp in started:
        if mp.proc is not None and mp.proc.poll() is None:
            os.killpg(mp.proc.pid, signal.SIGKILL)
            mp.proc.wait(10)


# ---- starting -------------------------------------------------------------------------

def test_no_preexec_fn_and_a_new_session(tmp_path: Path, monkeypatch, cleanup):
    seen: dict = {}
    real = subprocess.Popen

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(process.subprocess, "Popen", spy)
    mp = ManagedProcess("sleep", ["sleep", "600"], tmp_path / "sleep.log").start()
    cleanup(mp)
    assert seen.get("preexec_fn") is None and seen["start_new_session"] is True
    wait_for(lambda: running_as(mp.pid, "sleep"), what="exec of sleep")
    child = psutil.Process(mp.pid)
    assert child.cmdline() == ["sleep", "600"]  # the same pid runs the real argv
    assert os.getsid(mp.pid) == mp.pid != os.getsid(0)
    assert mp.stop() == -signal.SIGTERM


def test_a_missing_executable_fails_before_anything_starts(tmp_path: Path):
    mp = ManagedProcess("ghost", ["no-such-program-xyz"], tmp_path / "ghost.log")
    with pytest.raises(ComponentFailed, match="ghost: cannot start: no-such-program-xyz"):
        mp.start()
    assert mp.proc is None and mp.stop() is None


def test_argv_and_environment_reach_the_program(tmp_path: Path):
    code = "import os, sys; print(sys.argv[1:], os.environ['MP_TEST'], os.getcwd())"
    mp = ManagedProcess("py", [sys.executable, "-c", code, "a b", ""], tmp_path / "py.log",
                        env={"MP_TEST": "yes"}, cwd=tmp_path).start()
    assert mp.proc.wait(30) == 0
    assert mp.stop() == 0
    assert mp.log_path.read_text().strip() == f"['a b', ''] yes {tmp_path}"


# ---- CPU pinning ----------------------------------------------------------------------

@pytest.mark.skipif(not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="needs at least 2 CPUs")
def test_a_pinned_child_and_its_children_have_the_cpu_set(tmp_path: Path, cleanup):
    available = os.sched_getaffinity(0)
    cpu = max(available)
    mp = ManagedProcess("sh", ["sh", "-c", "sleep 600 & wait"], tmp_path / "sh.log",
                        cpus={cpu}).start()
    cleanup(mp)
    wait_for(lambda: running_as(mp.pid, "sh") and psutil.Process(mp.pid).children(),
             what="sh and its sleep")
    (grandchild,) = psutil.Process(mp.pid).children()
    assert os.sched_getaffinity(mp.pid) == {cpu}
    assert os.sched_getaffinity(grandchild.pid) == {cpu}  # forked later: inherited
    status = Path(f"/proc/{grandchild.pid}/status").read_text()
    assert f"Cpus_allowed_list:\t{cpu}\n" in status
    assert os.sched_getaffinity(0) == available  # the harness itself is not pinned
    mp.stop()
    unpinned = ManagedProcess("sleep", ["sleep", "600"], tmp_path / "free.log").start()
    cleanup(unpinned)
    assert os.sched_getaffinity(unpinned.pid) == available
    unpinned.stop()


@linux_only
def test_pinning_that_fails_never_runs_the_program(tmp_path: Path):
    marker = tmp_path / "ran"
    mp = ManagedProcess("touch", ["touch", str(marker)], tmp_path / "touch.log",
                        cpus={100_000})
    with pytest.raises(ComponentFailed, match="pinning to CPUs \\[100000\\] failed"):
        mp.start()
    assert mp.proc is not None and mp.proc.poll() is not None  # reaped, not left running
    assert not marker.exists()


def test_parse_cpus():
    assert parse_cpus(None) is None and parse_cpus("") is None
    first = min(os.sched_getaffinity(0))
    assert parse_cpus(str(first)) == {first}
    assert parse_cpus(f"{first}-{first}") == {first}
    with pytest.raises(UsageError, match="malformed CPU list 'x'"):
        parse_cpus("x")
    with pytest.raises(UsageError, match="CPUs \\[100000\\] are not available here"):
        parse_cpus("100000")


# ---- dying with the harness -----------------------------------------------------------

PARENT = textwrap.dedent("""
    import sys, threading, time
    from pathlib import Path
    from harness.stack import process
    process._USE_WRAPPER = sys.argv[2] == "wrapper"
    threading.Thread(target=time.sleep, args=(600,), daemon=True).start()  # like a monitor
    mp = process.ManagedProcess("sleep", ["sleep", "600"], Path(sys.argv[1])).start()
    print(mp.pid, flush=True)
    time.sleep(600)
""")


def orphan_after_kill_9(tmp_path: Path, mode: str) -> psutil.Process:
    """Start a parent that starts `sleep 600`, kill -9 the parent; the sleep process."""
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(tmp_path / "sleep.log"), mode],
                              cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        pid = int(parent.stdout.readline())
        wait_for(lambda: running_as(pid, "sleep"), what="exec of sleep")
        child = psutil.Process(pid)
        assert child.ppid() == parent.pid
    finally:
        parent.kill()  # SIGKILL: no handler, no cleanup, no atexit
        parent.wait(10)
    return child


@linux_only
def test_kill_9_of_the_parent_leaves_no_orphan(tmp_path: Path):
    child = orphan_after_kill_9(tmp_path, "wrapper")
    wait_for(lambda: gone(child), timeout=10, what="end of the orphaned sleep")


@linux_only
def test_without_the_wrapper_the_child_would_outlive_the_parent(tmp_path: Path):
    """The control: the test above fails when die-with-parent is off."""
    child = orphan_after_kill_9(tmp_path, "plain")
    try:
        psutil.wait_procs([child], timeout=1)
        assert not gone(child) and child.name() == "sleep"
    finally:
        child.kill()


@linux_only
@pytest.mark.parametrize("case", ["another parent", "no go from the parent"])
def test_the_wrapper_never_execs_when_its_parent_is_not_the_harness(tmp_path: Path, case):
    """The race: the harness died before prctl took effect (the child was reparented)."""
    marker = tmp_path / "ran"
    go_r, go_w = os.pipe()
    parent = os.getpid() if case == "no go from the parent" else 1
    proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", process._WRAPPER, str(parent),
                             str(go_r), str(int(signal.SIGTERM)), TOUCH, "touch", str(marker)],
                            pass_fds=(go_r,))
    os.close(go_r)
    if case == "another parent":
        os.write(go_w, b"go")
    os.close(go_w)
    assert proc.wait(30) == 70
    assert not marker.exists()


@linux_only
def test_the_wrapper_execs_with_the_go_from_its_parent(tmp_path: Path):
    marker = tmp_path / "ran"
    go_r, go_w = os.pipe()
    proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", process._WRAPPER,
                             str(os.getpid()), str(go_r), str(int(signal.SIGTERM)),
                             TOUCH, "touch", str(marker)], pass_fds=(go_r,))
    os.close(go_r)
    os.write(go_w, b"go")
    os.close(go_w)
    assert proc.wait(30) == 0
    assert marker.exists()


# ---- stopping -------------------------------------------------------------------------

def test_stop_kills_a_process_that_ignores_sigterm(tmp_path: Path, caplog):
    mp = start_ignoring_sigterm(tmp_path)
    with caplog.at_level(logging.WARNING, logger="harness.stack.process"):
        assert mp.stop(timeout=0.2) == -signal.SIGKILL
    assert "ignored SIGTERM" in caplog.text
    assert not psutil.pid_exists(mp.pid) or gone(psutil.Process(mp.pid))


def test_stop_twice_and_before_start(tmp_path: Path):
    assert ManagedProcess("never", ["sleep", "1"], tmp_path / "n.log").stop() is None
    mp = ManagedProcess("sleep", ["sleep", "600"], tmp_path / "sleep.log").start()
    assert mp.stop() == -signal.SIGTERM
    assert mp.stop() == -signal.SIGTERM
    assert mp._log is None


def test_stop_does_not_raise_when_the_process_outlives_sigkill(tmp_path: Path, monkeypatch,
                                                             caplog):
    mp = start_ignoring_sigterm(tmp_path)
    real_wait = mp.proc.wait
    calls = []

    def never_exits(timeout=None):
        calls.append(timeout)
        raise subprocess.TimeoutExpired(mp.argv, timeout)

    monkeypatch.setattr(mp.proc, "wait", never_exits)
    with caplog.at_level(logging.WARNING, logger="harness.stack.process"):
        assert mp.stop(timeout=0.1) is None  # no exit code: it never exited
    assert calls == [0.1, process._KILL_WAIT_S]  # after SIGTERM, then after SIGKILL
    assert "not reaped" in caplog.text and mp._log is None
    monkeypatch.undo()
    assert real_wait(30) == -signal.SIGKILL  # it did get the SIGKILL


def test_stop_does_not_raise_when_the_group_is_already_gone(tmp_path: Path, monkeypatch):
    mp = ManagedProcess("sleep", ["sleep", "600"], tmp_path / "sleep.log").start()

    def vanished(pid, sig):
        raise ProcessLookupError(3, "No such process")

    monkeypatch.setattr(process.os, "killpg", vanished)
    mp.proc.kill()
    mp.proc.wait(10)
    assert mp.stop() == -signal.SIGKILL


def test_stop_does_not_raise_when_closing_the_log_fails(tmp_path: Path, caplog):
    class BrokenLog:
        def close(self):
            raise OSError(5, "Input/output error")

    mp = ManagedProcess("sleep", ["sleep", "600"], tmp_path / "sleep.log").start()
    mp._log.close()
    mp._log = BrokenLog()
    with caplog.at_level(logging.WARNING, logger="harness.stack.process"):
        assert mp.stop() == -signal.SIGTERM
    assert "Input/output error" in caplog.text


def test_an_interrupt_while_stopping_escalates_to_sigkill(tmp_path: Path, monkeypatch):
    """A second Ctrl-C during teardown hurries the stop; it does not abort it."""
    mp = start_ignoring_sigterm(tmp_path)
    real_wait = mp.proc.wait
    calls = []

    def interrupted_once(timeout=None):
        calls.append(timeout)
        if len(calls) == 1:
            raise Interrupted("interrupted by SIGINT")
        return real_wait(timeout)

    monkeypatch.setattr(mp.proc, "wait", interrupted_once)
    assert mp.stop(timeout=600) == -signal.SIGKILL
    assert calls == [600, process._KILL_WAIT_S]


def test_a_ctrl_c_while_reaping_after_sigkill_does_not_escape_stop(tmp_path: Path,
                                                                   monkeypatch):
    mp = start_ignoring_sigterm(tmp_path)
    real_wait = mp.proc.wait
    calls = []

    def interrupted(timeout=None):
        calls.append(timeout)
        if len(calls) == 1:
            raise subprocess.TimeoutExpired(mp.argv, timeout)
        raise KeyboardInterrupt  # the second Ctrl-C lands while stop waits after SIGKILL

    monkeypatch.setattr(mp.proc, "wait", interrupted)
    assert mp.stop(timeout=0.1) is None
    assert len(calls) == 2 and mp._log is None
    monkeypatch.undo()
    assert real_wait(30) == -signal.SIGKILL


def test_a_second_start_on_the_same_log_reads_only_its_own_lines(tmp_path: Path):
    """The log is appended to (a restarted target keeps its history), so readiness must
    read what this start wrote: `harness stack up` on a reused state dir once found the
    previous stub's `{"stub_url": ...}` line first and pointed the target at a dead port."""
    log = tmp_path / "stub.log"
    for word in ("first", "second"):
        proc = ManagedProcess("echo", [sys.executable, "-c", f"print({word!r})"], log).start()
        proc.proc.wait(20)
        wait_for(lambda proc=proc, word=word: proc.log_since_start().strip() == word,
                 what=f"{word} in the log")
        proc.stop()
    assert log.read_text().split() == ["first", "second"]
