"""Child processes that never outlive the harness.

Every component (target service, ElevenLabs stub, Locust master and workers)
runs as a child in its own session, so a Ctrl-C on the terminal reaches the
harness alone and the harness stops the children in order (load first, then
the service, then its dependencies).

Nothing runs between fork and exec (no `preexec_fn`: it is unsafe once the
harness has threads, and it has monitor threads when it starts Locust). On
Linux the child is started through a tiny exec wrapper instead
(`python -I -S -c _WRAPPER`, about 20 ms, stdlib only) that

1. asks the kernel to SIGTERM it when the harness dies (`PR_SET_PDEATHSIG`,
   kept across `execve`), so even a `kill -9` of the harness leaves no
   orphan behind;
2. waits on a pipe until the harness has pinned it to its CPUs
   (`os.sched_setaffinity(pid, cpus)` from the parent), so every thread and
   child the real program creates later inherits the CPU set;
3. exits if its parent is no longer the harness (the harness died before
   step 1 took effect), and otherwise `os.execv`s the real argv: same pid,
   so the pid the harness watches is the real program's.

`PR_SET_PDEATHSIG` fires when the *thread* that started the child exits:
start components from the main thread (or a thread that lives as long as
they should).

Output goes to one log file per process in the run's `logs/` directory; when a
process dies early, the error names the component and its log.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from harness.errors import ComponentFailed, UsageError

log = logging.getLogger(__name__)

# Runs as `python -I -S -c _WRAPPER PARENT_PID GO_FD SIGNAL PATH ARGV...`: isolated, no
# site, stdlib only, so it costs ~20 ms and nothing in the environment changes it.
_WRAPPER = """\
import os, sys
parent, go_fd, sig, path, argv = (int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]),
                                  sys.argv[4], sys.argv[5:])
try:
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(1, sig, 0, 0, 0) != 0:  # PR_SET_PDEATHSIG
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
except (OSError, AttributeError) as exc:
    sys.stderr.write(f"harness: PR_SET_PDEATHSIG failed ({exc}); "
                     "this process may outlive the harness\\n")
go = os.read(go_fd, 2)  # the harness has pinned us (or died: EOF)
os.close(go_fd)
if go != b"go" or os.getppid() != parent:
    os._exit(70)  # the harness is gone (maybe before prctl took effect): never run
try:
    os.execv(path, argv)
except OSError as exc:
    sys.stderr.write(f"harness: cannot exec {path}: {exc}\\n")
    os._exit(127)
"""
_USE_WRAPPER = sys.platform.startswith("linux")
_KILL_WAIT_S = 5.0
"""How long `stop` waits for the process after SIGKILL before giving up on it."""


def parse_cpus(text: str | None) -> set[int] | None:
    """`0`, `0,1`, `2-3` -> a CPU set; None when not given (no pinning)."""
    if not text:
        return None
    if not hasattr(os, "sched_setaffinity"):
        raise UsageError("CPU pinning (--target-cpus, --locust-cpus) needs Linux")
    cpus: set[int] = set()
    malformed = UsageError(f"malformed CPU list {text!r} (use e.g. 0 or 0,1 or 2-3)")
    for part in text.split(","):
        lo, dash, hi = part.strip().partition("-")
        if not lo.isdigit() or (dash and not hi.isdigit()) or (dash and int(hi) < int(lo)):
            raise malformed
        cpus.update(range(int(lo), int(hi or lo) + 1))
    available = os.sched_getaffinity(0)
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
                 env: dict[str, str | None] | None = None, cwd: Path | None = None,
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
        self.log_offset = 0
        """Where the log ended when this process started: logs are appended to (a
        restarted target keeps its history), so what this start wrote begins here."""

    def start(self) -> ManagedProcess:
        env = {k: v for k, v in {**os.environ, **(self.env or {})}.items()
               if v is not None}  # None in `env`: not inherited
        env["PYTHONUNBUFFERED"] = "1"
        path = self._executable(env)
        if self.cpus and not hasattr(os, "sched_setaffinity"):
            raise self.fail("cannot start: CPU pinning needs Linux")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.log_offset = self._log.seek(0, os.SEEK_END)
        argv, go_r, go_w = list(self.argv), -1, -1
        if _USE_WRAPPER:
            go_r, go_w = os.pipe()  # both ends close-on-exec; only go_r is passed on
            argv = [sys.executable, "-I", "-S", "-c", _WRAPPER, str(os.getpid()), str(go_r),
                    str(int(signal.SIGTERM)), path, *self.argv]
        try:
            self.proc = subprocess.Popen(
                argv, stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=self.cwd,
                start_new_session=True, pass_fds=(go_r,) if go_r >= 0 else ())
        except OSError as exc:
            self._close_log()
            raise self.fail(f"cannot start: {exc}") from exc
        finally:
            if go_r >= 0:
                os.close(go_r)
        try:
            if self.cpus:
                os.sched_setaffinity(self.proc.pid, self.cpus)
            if go_w >= 0:
                os.write(go_w, b"go")
        except OSError as exc:
            self.stop(timeout=0)
            raise self.fail(f"cannot start: pinning to CPUs {sorted(self.cpus or ())} "
                            f"failed: {exc}") from exc
        finally:
            if go_w >= 0:
                os.close(go_w)
        return self

    def _executable(self, env: dict[str, str]) -> str:
        """argv[0] resolved the way exec would (PATH, or relative to `cwd`)."""
        exe = self.argv[0]
        if os.sep in exe:
            found = os.path.join(self.cwd, exe) if self.cwd else exe
            found = os.path.abspath(found)
            if not (os.path.isfile(found) and os.access(found, os.X_OK)):
                found = None
        else:
            found = shutil.which(exe, path=env.get("PATH", os.defpath))
        if found is None:
            raise self.fail(f"cannot start: {exe}: no such executable")
        return found

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_since_start(self) -> str:
        """What this start of the process has written to its log so far (not what an
        earlier process appended to the same file)."""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(self.log_offset)
                return log.read().decode("utf-8", errors="replace")
        except OSError:
            return ""

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
            except Exception:  # noqa: BLE001, S110 - any probe failure means "not yet"
                pass
            time.sleep(0.1)
        raise self.fail(f"not {what} after {timeout:.0f}s")

    def signal(self, sig: int) -> None:
        """Send `sig` to the whole process group (uvicorn workers too) while it runs."""
        if self.alive:
            with contextlib.suppress(OSError):  # gone meanwhile, or not ours any more
                os.killpg(self.proc.pid, sig)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM the process group, SIGKILL it after `timeout`; the exit code, or None.

        Never raises: a process that outlives even SIGKILL (stuck in the kernel), a
        process already gone, or a log already closed is logged as a warning. A Ctrl-C
        or SIGTERM that reaches the harness while this waits (`Interrupted`) does not
        abort the stop either: it escalates to SIGKILL at once. Safe to call twice.
        """
        proc = self.proc
        if proc is None:
            return None
        was_running = proc.returncode is None
        try:
            if proc.poll() is None:
                self._terminate(proc, timeout)
        except Exception as exc:  # noqa: BLE001 - stop must not raise; say what happened
            log.warning("%s (pid %s): stopping failed: %s", self.name, proc.pid, exc)
        if was_running:  # reap what is left in its group (a worker whose parent died first);
            # only once: after that the pid, and so the group id, may belong to someone else
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
        self._close_log()
        return proc.returncode

    def _terminate(self, proc: subprocess.Popen, timeout: float) -> None:
        self.signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
            return
        except subprocess.TimeoutExpired:
            if timeout > 0:
                log.warning("%s (pid %s) ignored SIGTERM for %.0fs; sending SIGKILL",
                            self.name, proc.pid, timeout)
        except (KeyboardInterrupt, Exception) as exc:  # noqa: BLE001 - e.g. a second Ctrl-C
            log.warning("%s (pid %s): %s while waiting for it to exit; sending SIGKILL",
                        self.name, proc.pid, type(exc).__name__)
        self.signal(signal.SIGKILL)
        try:
            proc.wait(_KILL_WAIT_S)
        except (KeyboardInterrupt, Exception) as exc:  # noqa: BLE001 - stop must not raise
            log.warning("%s (pid %s) not reaped %.0fs after SIGKILL (%s); leaving it",
                        self.name, proc.pid, _KILL_WAIT_S, type(exc).__name__)

    def _close_log(self) -> None:
        log_file, self._log = self._log, None
        if log_file is not None:
            try:
                log_file.close()
            except OSError as exc:
                log.warning("%s: closing %s failed: %s", self.name, self.log_path, exc)
