"""`harness run --chaos SPEC`: inject the scheduled faults into the running stack.

`Chaos` starts with the measured window (the runner calls `start(measure_from)` as soon
as the plugin's `live.json` says the window opened) and, on a thread of its own, does
each fault at `measure_from + start_s`:

* `db-disconnect`: `pg_terminate_backend` of every backend connected to the service's
  database, except the admin connection that asks (embedded or external server);
* `db-restart`: `EmbeddedPostgres.restart()` (`pg_ctl restart -m fast`): ended when the
  server accepts connections again;
* `db-pause`: SIGSTOP the postmaster, then every process under it (stopped first, it
  forks no new backend meanwhile), SIGCONT all of them after the duration;
* `target-kill`: SIGKILL one uvicorn worker. With `--target-workers 2+` uvicorn's
  supervisor notices within about half a second and starts another (the fault ends
  when the worker count is back); with one worker uvicorn serves in its own process
  and nothing restarts it, so the harness starts the target again on the same port
  (`Stack.restart_target`, on the main thread: see `tick`);
* `stub:PRESET`: `POST {stub}/__admin/faults {"preset": PRESET}` for the window, then
  the run's own `--faults` preset again.

Every injection becomes a `FaultRecord` (what was done, when, and the error if it could
not be done: the run goes on, a fault is never a harness failure), written to
`chaos.json` in the run directory; the record adds the recovery figures
(`harness.analysis.recovery`) and one `Event` at each fault's start and end.

`stop()` is called on every way out of a run (normal end, Ctrl-C, errors): it continues
a paused server before anything else, puts the stub's preset back, and marks the faults
whose time never came. A stopped PostgreSQL is never left behind.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import psutil
from pydantic import BaseModel, ConfigDict

from harness.model.chaos import FaultRecord, FaultSpec
from harness.model.client import Event
from harness.model.files import load_json, save_json
from harness.stack.database import EmbeddedPostgres, redact_text

log = logging.getLogger(__name__)
CHAOS_FILE = "chaos.json"
WORKER_BACK_TIMEOUT_S = 30.0
"""How long a killed uvicorn worker may take to be replaced before the fault says so."""
_DB_TIMEOUT_S = 5.0


class ChaosLog(BaseModel):
    """`chaos.json`: the faults as injected (recovery is added by the run record)."""

    model_config = ConfigDict(extra="forbid")
    faults: list[FaultRecord] = []


def save_log(faults: Sequence[FaultRecord], run_dir: Path) -> None:
    save_json(ChaosLog(faults=list(faults)), run_dir / CHAOS_FILE, indent=1)


def load_log(run_dir: Path) -> list[FaultRecord] | None:
    """The run's injected faults; None for a run without `--chaos`."""
    path = run_dir / CHAOS_FILE
    if not path.exists():
        return None
    return load_json(path, ChaosLog, f"no {CHAOS_FILE} in {run_dir}").faults


def events(faults: Sequence[FaultRecord]) -> list[Event]:
    """One event when each fault began (with its outcome) and, for a fault with a
    duration, one when it ended."""
    out = []
    for f in faults:
        if f.started_at is None:
            continue
        out.append(Event(t=f.started_at, name=f"chaos:{f.spec.text}", ok=f.ok, error=f.error))
        if f.spec.duration_s is not None and f.ended_at is not None:
            out.append(Event(t=f.ended_at, name=f"chaos:{f.spec.text} end", ok=f.ok))
    return out


@dataclass
class ChaosTarget:
    """What the faults act on: the running stack, as `Stack` exposes it."""

    admin_dsn: str
    database: str
    """The service's database (the run's clone) on that server."""
    embedded: EmbeddedPostgres | None
    target_pid: Callable[[], int | None]
    target_workers: int
    restart_target: Callable[[], int]
    """Start the target again on its port, wait until ready, return its pid (main thread)."""
    stub_url: str | None
    stub_preset: str
    """The run's own `--faults` preset: what a stub window goes back to."""


# ---- the injections ----------------------------------------------------------------


async def _terminate_backends(admin_dsn: str, database: str) -> int:
    conn = await asyncpg.connect(admin_dsn, timeout=_DB_TIMEOUT_S)
    try:
        rows = await conn.fetch(
            "SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()", database, timeout=_DB_TIMEOUT_S)
    finally:
        await conn.close(timeout=2)
    return sum(1 for r in rows if r["done"])


def terminate_backends(admin_dsn: str, database: str) -> int:
    """How many backends of `database` were terminated."""
    return asyncio.run(_terminate_backends(admin_dsn, database))


class Pause:
    """A process and everything under it, stopped (SIGSTOP) until `resume`.

    Safe to resume twice, from any thread, and at interpreter exit (registered with
    `atexit` while paused): a stopped server must never outlive the run."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.stopped: list[psutil.Process] = []
        self.continued = 0
        self._lock = threading.Lock()

    def suspend(self) -> int:
        """Stop the root first (it forks nothing new), then its descendants."""
        root = psutil.Process(self.pid)
        with self._lock:
            atexit.register(self.resume)
            root.suspend()
            self.stopped.append(root)
            for child in root.children(recursive=True):
                with contextlib.suppress(psutil.NoSuchProcess):
                    child.suspend()
                    self.stopped.append(child)
        return len(self.stopped)

    def resume(self) -> int:
        """Continue everything stopped (children first); how many were continued in all."""
        with self._lock:
            stopped, self.stopped = self.stopped, []
            for proc in reversed(stopped):
                with contextlib.suppress(psutil.NoSuchProcess):
                    proc.resume()
                    self.continued += 1
            atexit.unregister(self.resume)
        return self.continued


def uvicorn_workers(pid: int) -> list[psutil.Process]:
    """The worker processes of a multi-worker uvicorn (spawned by multiprocessing)."""
    try:
        children = psutil.Process(pid).children()
    except psutil.NoSuchProcess:
        return []
    workers = []
    for child in children:
        with contextlib.suppress(psutil.Error):
            if "spawn_main" in " ".join(child.cmdline()):
                workers.append(child)
    return workers


def set_stub_preset(stub_url: str, preset: str) -> None:
    """Switch the stub's fault preset through its admin API (as upstream_faults does)."""
    response = httpx.post(f"{stub_url.rstrip('/')}/__admin/faults", json={"preset": preset},
                          timeout=5.0)
    response.raise_for_status()


# ---- the schedule ----------------------------------------------------------------


class Chaos:
    """The faults of one run; `start`, then `tick` from the main thread, then `stop`."""

    def __init__(self, faults: Sequence[FaultSpec], target: ChaosTarget,
                 on_event: Callable[[str], None] = lambda _: None) -> None:
        self.target = target
        self.records = [FaultRecord(spec=f) for f in faults]
        self.on_event = on_event
        self.measure_from: float | None = None
        self._stop = threading.Event()
        self._lock = threading.RLock()
        self._thread: threading.Thread | None = None
        self._pauses: dict[int, Pause] = {}
        self._stub_windows: set[int] = set()
        self._restart: tuple[int, FaultRecord, int] | None = None
        """A single-worker target killed: (index, record, old pid), until restarted."""

    @property
    def started(self) -> bool:
        return self.measure_from is not None

    @property
    def target_down_expected(self) -> bool:
        """The target was killed on purpose and is being started again."""
        return self._restart is not None

    def start(self, measure_from: float) -> None:
        """Begin the schedule: fault times count from `measure_from` (epoch seconds)."""
        if self.started:
            return
        self.measure_from = measure_from
        self._thread = threading.Thread(target=self._run, name="chaos", daemon=True)
        self._thread.start()

    def _actions(self) -> list[tuple[float, int, bool]]:
        """(when, fault index, is its end) in time order; ends before begins at a tie."""
        out = []
        for i, r in enumerate(self.records):
            out.append((r.spec.start_s, i, False))
            if r.spec.duration_s is not None:
                out.append((r.spec.end_s, i, True))
        return sorted(out, key=lambda a: (a[0], not a[2]))

    def _run(self) -> None:
        for at, i, is_end in self._actions():
            if self._stop.wait(max(0.0, self.measure_from + at - time.time())):
                return
            with self._lock:
                if self._stop.is_set():
                    return
                try:
                    (self._end if is_end else self._begin)(i)
                except Exception as exc:  # noqa: BLE001 - recorded: a fault never fails a run
                    self._failed(self.records[i], exc)

    def _failed(self, record: FaultRecord, exc: BaseException) -> None:
        record.ok = False
        record.error = redact_text(f"{type(exc).__name__}: {exc}")[:300]
        record.ended_at = record.ended_at or time.time()
        log.warning("chaos %s failed: %s", record.spec.text, record.error)
        self.on_event(f"chaos {record.spec.text} failed: {record.error}")

    def _begin(self, i: int) -> None:
        r, t = self.records[i], self.target
        kind = r.spec.kind
        r.started_at = time.time()
        self.on_event(f"chaos: {r.spec.text}")
        if kind == "db-disconnect":
            n = terminate_backends(t.admin_dsn, t.database)
            r.ended_at, r.detail = time.time(), f"terminated {n} backends of {t.database}"
        elif kind == "db-restart":
            if t.embedded is None:
                raise RuntimeError("db-restart needs the embedded server")
            t.embedded.restart()
            r.ended_at = time.time()
            r.detail = f"restarted the embedded server in {r.ended_at - r.started_at:.2f}s"
        elif kind == "db-pause":
            if t.embedded is None:
                raise RuntimeError("db-pause needs the embedded server")
            pause = Pause(t.embedded.postmaster_pid())
            self._pauses[i] = pause
            r.detail = f"stopped {pause.suspend()} server processes (postmaster {pause.pid})"
        elif kind == "stub":
            if not t.stub_url:
                raise RuntimeError("the run has no ElevenLabs stub")
            self._stub_windows.add(i)
            set_stub_preset(t.stub_url, r.spec.preset or "healthy")
            r.detail = f"stub preset {r.spec.preset}"
        elif kind == "target-kill":
            self._kill_target(i, r)

    def _kill_target(self, i: int, r: FaultRecord) -> None:
        t = self.target
        pid = t.target_pid()
        if pid is None:
            raise RuntimeError("the target is not running")
        if t.target_workers > 1:
            workers = uvicorn_workers(pid)
            if not workers:
                raise RuntimeError(f"no uvicorn worker found under the target (pid {pid})")
            victim = workers[0]
            others = {w.pid for w in workers} - {victim.pid}
            victim.kill()
            deadline = time.monotonic() + WORKER_BACK_TIMEOUT_S
            while time.monotonic() < deadline and not self._stop.is_set():
                new = {w.pid for w in uvicorn_workers(pid)} - others - {victim.pid}
                if new:
                    r.ended_at = time.time()
                    r.detail = (f"killed worker {victim.pid}; uvicorn started {min(new)} in "
                                f"its place after {r.ended_at - r.started_at:.1f}s")
                    return
                time.sleep(0.1)
            raise RuntimeError(f"killed worker {victim.pid}, but uvicorn started no other "
                               f"in {WORKER_BACK_TIMEOUT_S:.0f}s")
        self._restart = (i, r, pid)  # before the kill: the runner must not call it a crash
        os.kill(pid, signal.SIGKILL)
        r.detail = (f"killed the target (pid {pid}), its only worker: uvicorn serves one "
                    "worker in-process and nothing restarts it")

    def tick(self) -> int | None:
        """From the main thread: start a killed single-worker target again (its children
        must be started by the thread that lives as long as they should). Returns the
        new pid when it did."""
        pending = self._restart
        if pending is None:
            return None
        _, r, _ = pending
        try:
            pid = self.target.restart_target()
        except Exception as exc:  # recorded, then raised: a target that cannot start
            self._restart = None
            self._failed(r, exc)
            raise
        r.ended_at = time.time()
        r.detail = f"{r.detail}; the harness started it again (pid {pid}) in " \
                   f"{r.ended_at - r.started_at:.1f}s"
        self._restart = None
        return pid

    def _end(self, i: int) -> None:
        r, t = self.records[i], self.target
        if r.started_at is None or r.ended_at is not None:
            return
        if i in self._pauses:
            n = self._pauses.pop(i).resume()
            r.detail = f"{r.detail}; continued {n}"
        if i in self._stub_windows:
            self._stub_windows.discard(i)
            set_stub_preset(t.stub_url or "", t.stub_preset)
            r.detail = f"{r.detail}, then {t.stub_preset} again"
        r.ended_at = time.time()
        self.on_event(f"chaos: {r.spec.text} ended")

    def stop(self, timeout: float = 90.0) -> list[FaultRecord]:
        """End the schedule: continue a paused server first (whatever else happens),
        undo an active stub window, mark the faults never injected; the records."""
        self._stop.set()
        for pause in list(self._pauses.values()):  # before waiting on anything
            pause.resume()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._lock:
            for i in sorted(set(self._pauses) | self._stub_windows):
                try:
                    self._end(i)
                    self.records[i].detail = f"{self.records[i].detail} (ended early: the " \
                                             "run stopped)"
                except Exception as exc:  # noqa: BLE001 - recorded, the rest still runs
                    self._failed(self.records[i], exc)
            for pause in self._pauses.values():
                pause.resume()
            self._pauses.clear()
            for r in self.records:
                if r.started_at is None:
                    r.ok, r.error = False, "not injected: the run ended before its time"
        return self.records
