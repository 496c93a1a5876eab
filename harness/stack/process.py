"""Child processes that never outlive the harness.

Every component (target service, ElevenLabs stub, Locust master and workers)
runs as a child in its own session, so a Ctrl-C on the terminal reaches the
harness alone and the harness stops the children in order (load first, then
the service, then its dependencies). On Linux each child also asks the kernel
to SIGTERM it if the harness dies (`PR_SET_PDEATHSIG`), so even a `kill -9`
of the harness leaves no orphan behind.

Output goes to one log file per process in the run's `logs/` directory; when a
process dies early, the error names the component and its log.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from harness.errors import ComponentFailed, UsageError

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def parse_cpus(text: str | None) -> set[int] | None:
    """`0`, `0,1`, `2-3` -> a CPU set; None when not given (no pinning)."""
    if not text:
        return None
    cpus: set[int] = set()
    try:
        for part in text.split(","):
            lo, _, hi = part.strip().partition("-")
            cpus.update(range(int(lo), int(hi or lo) + 1))
    except ValueError as exc:
        raise UsageError(f"malformed CPU list {text!r} (use e.g. 0 or 0,1 or 2-3)") from exc
    available = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else cpus
    if not cpus <= available:
        raise UsageError(f"CPUs {sorted(cpus - available)} are not available here")
    return cpus


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def check_port_free(host: str, port: int) -> None:
    """Raise a usage error when a port the user asked for is taken."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError as exc:
            raise UsageError(f"port {port} on {host} is already in use") from exc


class ManagedProcess:
    """A named child process with a log file, a readiness wait and a clean stop."""

    def __init__(self, name: str, argv: list[str], log_path: Path,
                 env: dict[str, str] | None = None, cwd: Path | None = None,
                 cpus: set[int] | None = None) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.env = env
        self.cwd = cwd
        self.cpus = cpus
        """Pin the process (and its children) to these CPUs, e.g. to keep the load
        generator off the target's cores on a small machine."""
        self.proc: subprocess.Popen | None = None
        self._log = None

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        env = {**os.environ, **(self.env or {}), "PYTHONUNBUFFERED": "1"}
        cpus = self.cpus

        def prepare() -> None:  # in the child, between fork and exec
            _die_with_parent()
            if cpus:
                os.sched_setaffinity(0, cpus)

        try:
            self.proc = subprocess.Popen(
                self.argv, stdout=self._log, stderr=subprocess.STDOUT, env=env,
                cwd=self.cwd, start_new_session=True, preexec_fn=prepare)
        except OSError as exc:
            raise ComponentFailed(self.name, f"cannot start: {exc}", str(self.log_path)) from exc
        return self

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def fail(self, message: str) -> ComponentFailed:
        """The error to raise about this component, with its log location."""
        return ComponentFailed(self.name, message, str(self.log_path))

    def wait_until(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll `ready` until true; fail early, with the log, if the process exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive:
                code = self.proc.returncode if self.proc else None
                raise self.fail(f"exited with code {code} before {what}")
            try:
                if ready():
                    return
            except Exception:  # noqa: BLE001 - any probe failure means "not yet"
                pass
            time.sleep(0.1)
        raise self.fail(f"not {what} after {timeout:.0f}s")

    def signal(self, sig: int) -> None:
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)  # the whole group: uvicorn workers too

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM the process group, then SIGKILL after `timeout`; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.proc.wait(5)
        # reap anything left in its group (e.g. a worker whose parent died first)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        if self._log is not None:
            self._log.close()
            self._log = None
        return self.proc.returncode
