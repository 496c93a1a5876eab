"""`harness run`, the processes: bring the stack up, drive it with Locust, tear it down.

Locust runs as separate processes (a master and `--workers` local workers;
remote machines can join with `harness worker`), never inside this process:
Locust monkey-patches the interpreter with gevent on import. The harness
plugin inside Locust records exact histograms into the run directory; this
process scrapes the service's `/metrics` every two seconds, samples every
process's footprint, shows live progress, and writes `run.json`
(`harness.run.run_info`). Turning the directory into `result.json` and the other
outputs is a separate step (`harness.run.record`), so a run directory can be
collected again later and a failure while writing outputs leaves no process behind.

A traced run (`RunConfig.trace_sampling`): the target spools its spans into the run
directory, the plugin sends a client-made `traceparent` with every request, and the
teardown (after SIGTERM flushed the exporter) turns the spool into `spans.jsonl`.

`--abort-on` thresholds (`RunConfig.abort_on`) are judged by
`harness.analysis.abort.AbortEvaluator` on every `live.json` the watch loop reads;
when one fires the loop ends early and the run is torn down exactly like one that
ran its course (Locust's master gets SIGTERM and still writes `client.json`), with
status `aborted` and the reason in `run.json` (`RunInfo.aborted`).

`--chaos` faults (`RunConfig.chaos`) are injected by `harness.stack.chaos.Chaos`: its
clock starts at the measured window's opening, which `live.json` announces from the first
spawn on; the watch loop starts it, and restarts a single-worker target that a
`target-kill` took down (on this, the main, thread). The teardown stops it before
anything else (a paused database is continued first of all) and writes `chaos.json`.

Across machines the master and the target bind `--master-bind-host`; Locust's master
hands every worker the target's advertised URL and the `--harness-*` options (in each
spawn message), the plugin the dataset manifest, so a remote worker needs nothing of
the run directory; the master scrapes at the local URL (`HARNESS_METRICS_URL`).

`Run.execute()` returns on every path: success, Ctrl-C, SIGTERM, a component
dying; only input the user must fix (`Stack.preflight`: an address or a port), found
before anything starts or is written, raises. Locust, the monitors, the service, the
stub and the database are stopped in that order first; signals that arrive during that
teardown are noted and do not interrupt it (a second Ctrl-C, SIGTERM from a CI runner).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from harness.analysis.abort import AbortEvaluator, Firing
from harness.errors import ConfigError, HarnessError, Interrupted, RunFailed
from harness.model.client import LiveStatus, load_client
from harness.model.files import save_json
from harness.run import layout, spans
from harness.run.config import RunConfig
from harness.run.monitor import ProcessSampler, Scraper
from harness.run.progress import Progress
from harness.run.run_info import run_info
from harness.stack.address import local_host
from harness.stack.chaos import Chaos, ChaosTarget, save_log
from harness.stack.database import redact_text
from harness.stack.process import ManagedProcess, check_port_free, free_port
from harness.stack.stack import Stack, StackInfo
from harness.stack.writes import check_writes
from scenarios import locustfiles_arg

log = logging.getLogger(__name__)
REMOTE_JOIN_TIMEOUT_S = 900.0
"""How long a run waits for workers expected from other machines (started there by hand)
before its load starts."""


@dataclass
class RunOutcome:
    """Where the run left its files, and what ended it badly (None: it completed), or
    the `--abort-on` threshold that stopped it early."""

    run_dir: Path
    error: HarnessError | None = None
    aborted: Firing | None = None


@contextlib.contextmanager
def signals_deferred(on_signal: Callable[[str], None]) -> Iterator[None]:
    """Within the block, SIGINT/SIGTERM are reported to `on_signal` instead of raising,
    so a teardown always runs to its end (no-op outside the main thread)."""
    try:
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        for sig in previous:
            signal.signal(sig, lambda signum, _frame: on_signal(signal.Signals(signum).name))
    except ValueError:  # not the main thread: nothing to defer
        yield
        return
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class Run:
    """One `harness run`: call `execute()`, then collect the directory it returns."""

    def __init__(self, config: RunConfig, progress: Progress) -> None:
        self.config = config
        self.progress = progress
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        self.run_id = f"{stamp}-{config.scenario}-{config.profile}-{secrets.token_hex(2)}"
        self.run_dir = layout.run_dir(config.out, self.run_id)
        self.started_at = time.time()
        self.locust: list[ManagedProcess] = []
        self.status = "complete"
        self.notes: list[str] = []
        self.sampler = ProcessSampler()
        self._late_signal: str | None = None
        self.aborted: Firing | None = None
        self.chaos: Chaos | None = None
        self.advertised = local_host(config.master_bind_host)
        """The address remote workers use for the master and the target."""

    # ---- orchestration -------------------------------------------------------

    def execute(self) -> RunOutcome:
        cfg = self.config
        stack = Stack(cfg.stack_for(self.run_dir), on_phase=self.progress.phase,
                      on_seed_progress=self.progress.seed)
        # what the user must fix is exit 2 before anything starts or is written
        self.advertised = stack.preflight()
        if cfg.master_bind_port:
            check_port_free(cfg.master_bind_host, cfg.master_bind_port)
        try:
            (self.run_dir / "logs").mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create the run directory {self.run_dir}: "
                              f"{exc.strerror or exc}") from exc
        failure: BaseException | None = None
        scraper: Scraper | None = None
        info: StackInfo | None = None
        self.sampler.watch("harness", os.getpid())
        self.sampler.start()
        try:
            info = stack.up()
            scraper = Scraper(info.metrics_url, layout.metrics_dir(self.run_dir))
            scraper.start()
            if stack.target is not None:
                self.sampler.watch("target", stack.target.pid)
            if cfg.chaos:
                self.chaos = self._chaos(stack, info)
            self._start_locust(info)
            for proc in self.locust:
                self.sampler.watch(proc.name.replace(" ", "-"), proc.pid)
            self._watch(stack)
        except BaseException as exc:  # noqa: BLE001 - recorded, returned after cleanup
            failure = exc
            self.status = "interrupted" if isinstance(exc, (Interrupted, KeyboardInterrupt)) \
                else "failed"
            self.notes.append(redact_text(f"{type(exc).__name__}: {exc}"))
        finally:
            with signals_deferred(self._signal_during_teardown):
                self._teardown(stack, scraper)
                try:
                    self._write_info(info)
                except Exception as exc:  # noqa: BLE001 - said, and the outcome still returned
                    log.warning("writing %s failed: %s", layout.RUN_INFO, exc)
                    failure = failure or RunFailed(f"could not write {layout.RUN_INFO}: {exc}")
        if failure is None and self._late_signal is not None:
            failure = Interrupted(f"{self._late_signal} during teardown")
        return RunOutcome(self.run_dir, _as_harness_error(failure), self.aborted)

    def _chaos(self, stack: Stack, info: StackInfo) -> Chaos:
        cfg = self.config
        target = ChaosTarget(
            admin_dsn=stack.admin_dsn or "", database=urlsplit(info.database_url).path[1:],
            embedded=stack.embedded, target_pid=lambda: stack.target.pid if stack.target
            else None, target_workers=cfg.stack.target_workers,
            restart_target=stack.restart_target, stub_url=info.stub_url,
            stub_preset=cfg.stack.faults)
        return Chaos(cfg.chaos, target, on_event=self.progress.phase)

    def _stop_chaos(self) -> None:
        """Continue a paused database, undo a stub window, and keep what was injected."""
        if self.chaos is not None:
            save_log(self.chaos.stop(), self.run_dir)

    def _signal_during_teardown(self, name: str) -> None:
        """A signal while stopping: the teardown goes on; the run counts as interrupted."""
        if self.status == "complete":
            self.status = "interrupted"
        self._late_signal = self._late_signal or name
        self.notes.append(f"{name} during teardown: still stopping every process")
        self.progress.phase(f"{name}: stopping, please wait")

    def _check_writes(self, stack: Stack) -> None:
        """Every write the clients got a 201 for, looked up in the database while it is
        still up (`writes.json`; the record's `writes`, which fails the gate if any is
        lost)."""
        path = self.run_dir / "client.json"
        if stack.info is None or not path.exists():
            return
        acks = load_client(path).writes
        if not acks.ids:
            return
        self.progress.phase(f"checking {len(acks.ids):,} acknowledged writes")
        check = asyncio.run(check_writes(stack.info.database_url, acks.ids, acks.duplicates))
        save_json(check, self.run_dir / layout.WRITES, indent=1)

    def _teardown(self, stack: Stack, scraper: Scraper | None) -> None:
        """Every step runs, whatever the one before it raised. Chaos first: a paused
        database would hang everything after it."""
        steps: list[tuple[str, Callable[[], object]]] = [
            ("chaos", self._stop_chaos), ("Locust", self._stop_locust),
            ("process sampler", self.sampler.stop)]
        if scraper is not None:
            steps.append(("metrics scraper", scraper.stop))
        # Locust has stopped (every acknowledgement is in), faults are undone and the
        # database is still up until "the stack" below
        steps.append(("the write check", lambda: self._check_writes(stack)))
        steps += [("the stack", lambda: (self.progress.phase("stopping the stack"), stack.down())),
                  ("the spans", self._write_spans),
                  ("process table", lambda: self.sampler.write_csv(
                      layout.processes_csv(self.run_dir)))]
        for what, step in steps:
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - the other steps must still run
                log.warning("stopping %s failed: %s", what, exc)
                self.notes.append(redact_text(f"stopping {what} failed: {exc}"))

    def _write_spans(self) -> None:
        """The target's span spool as `spans.jsonl` (traced runs), now that it has
        stopped and flushed."""
        note = spans.write_jsonl(self.run_dir, self.progress.phase)
        if note is not None:
            self.notes.append(note)

    def _locust_args(self, info: StackInfo) -> list[str]:
        cfg = self.config
        args = ["-f", locustfiles_arg(cfg.scenario, cfg.shape), "--headless",
                "-u", str(cfg.users), "-r", str(cfg.spawn_rate),
                "-t", f"{int(cfg.warmup_s + cfg.duration_s)}s", "--host", info.target_url,
                "--stop-timeout", "5", "--exit-code-on-error", "0",
                "--harness-out", str(self.run_dir), "--harness-warmup", str(cfg.warmup_s),
                "--harness-manifest", info.manifest, "--harness-seed", str(cfg.stack.seed),
                "--harness-pace-scale", str(cfg.pace_scale)]
        if info.stub_url:
            args += ["--harness-stub-url", info.stub_url]
        if cfg.shape:
            args += ["--harness-shape", cfg.shape]
        if cfg.trace_sampling is not None:  # forwarded by the master to its workers
            args += ["--harness-trace-sampling", repr(float(cfg.trace_sampling))]
        if cfg.trace_interleave_s is not None:
            args += ["--harness-trace-interleave", str(cfg.trace_interleave_s)]
        return args

    def _start_locust(self, info: StackInfo) -> None:
        cfg = self.config
        base = [sys.executable, "-m", "locust"]
        logs = self.run_dir / "logs"
        expected = cfg.workers + cfg.remote_workers
        self.progress.phase(f"starting Locust ({expected} worker(s))" if expected
                            else "starting Locust")
        # the window-edge scrapes go where this machine reaches the target, whatever
        # address is advertised (a NAT address may not route back here)
        env = {"HARNESS_METRICS_URL": info.metrics_url}
        if expected == 0:
            self.locust.append(ManagedProcess("locust", base + self._locust_args(info),
                                              logs / "locust.log", env=env,
                                              cpus=cfg.locust_cpus).start())
            return
        port = cfg.master_bind_port or free_port(cfg.master_bind_host)
        master = base + self._locust_args(info) + [
            "--master", "--expect-workers", str(expected),
            "--master-bind-host", cfg.master_bind_host, "--master-bind-port", str(port)]
        self.locust.append(ManagedProcess("locust master", master, logs / "locust-master.log",
                                          env=env, cpus=cfg.locust_cpus).start())
        if cfg.remote_workers:
            self.progress.phase(f"waiting for {cfg.remote_workers} remote worker(s): "
                                f"{self.worker_command(port)}")
        for n in range(cfg.workers):  # a master bound to one address answers only there
            worker = base + ["-f", locustfiles_arg(cfg.scenario, cfg.shape), "--worker",
                             "--master-host", local_host(cfg.master_bind_host),
                             "--master-port", str(port)]
            self.locust.append(ManagedProcess(f"locust worker {n + 1}", worker,
                                              logs / f"locust-worker-{n + 1}.log",
                                              cpus=cfg.locust_cpus).start())

    def worker_command(self, port: int) -> str:
        """What to run on another machine to join this run (printed while it waits)."""
        cfg = self.config
        shape = f" --shape {cfg.shape}" if cfg.shape else ""
        return (f"harness worker --master {self.advertised}:{port} --scenario "
                f"{cfg.scenario}{shape}")

    def _watch(self, stack: Stack) -> None:
        """Until Locust's master exits (or an `--abort-on` threshold fires): progress,
        component health and the thresholds. The run's own deadline counts from the first
        live figures: before them the master may be waiting for workers started by hand."""
        cfg = self.config
        master = self.locust[0]
        run_s = cfg.warmup_s + cfg.duration_s + 120
        deadline = time.monotonic() + (REMOTE_JOIN_TIMEOUT_S if cfg.remote_workers else run_s)
        started = time.time()
        thresholds = AbortEvaluator(cfg.abort_on) if cfg.abort_on else None
        running = False
        try:
            while master.alive:
                live = layout.read_live(self.run_dir)
                if live is not None and not running:  # the load started: the run's own time
                    running, deadline = True, time.monotonic() + run_s
                self.progress.live(live, time.time() - started, cfg.warmup_s + cfg.duration_s)
                self._tick_chaos(stack, live)
                self._check_components(stack)  # a dead target fails the run, not a threshold
                if thresholds is not None and live is not None:
                    firing = thresholds.observe(live)
                    if firing is not None:
                        self._abort(firing)
                        return
                if time.monotonic() > deadline:
                    if running or not cfg.remote_workers:
                        raise master.fail("did not finish in time")
                    raise master.fail(f"no load started: the {cfg.remote_workers} remote "
                                      f"worker(s) did not join within "
                                      f"{REMOTE_JOIN_TIMEOUT_S:.0f}s")
                time.sleep(0.25)
        finally:
            if thresholds is not None:
                self.notes.extend(
                    f"--abort-on {spec.text!r} was never judged: no requests to "
                    f"{spec.endpoint or 'the target'} in the measured phase"
                    for spec in thresholds.never_evaluated())
        code = master.proc.returncode if master.proc else None
        if code not in (0, None):
            raise master.fail(f"exited with code {code}")

    def _tick_chaos(self, stack: Stack, live: LiveStatus | None) -> None:
        """Start the faults' clock once the window's opening is known; start a target
        a fault killed again."""
        if self.chaos is None:
            return
        if not self.chaos.started and live is not None and live.measure_from is not None:
            self.chaos.start(live.measure_from)
        if self.chaos.tick() is not None and stack.target is not None:
            self.sampler.watch("target", stack.target.pid)

    def _abort(self, firing: Firing) -> None:
        """A threshold fired: the run ends here, recorded as aborted and why; the
        teardown that follows stops Locust as at a normal end."""
        self.status = "aborted"
        self.aborted = firing
        self.notes.append(firing.message())
        self.progress.phase("abort threshold breached: stopping the run early")

    def _check_components(self, stack: Stack) -> None:
        """A component that died ends the run (a worker leaves with 0 when the master quits)."""
        for component in (stack.target, stack.stub):
            if component is stack.target and self.chaos and self.chaos.target_down_expected:
                continue  # killed on purpose: the next tick starts it again
            if component is not None and not component.alive:
                raise component.fail("exited during the run")
        for worker in self.locust[1:]:
            if not worker.alive and worker.proc.returncode not in (0, None):
                raise worker.fail(f"exited with code {worker.proc.returncode}")

    def _stop_locust(self) -> None:
        """SIGTERM a still-running master first (Locust quits gracefully and the plugin
        still collects the workers' final reports and writes client.json), then the rest."""
        for proc in self.locust:
            proc.stop(timeout=30)

    # ---- what ran ------------------------------------------------------------

    def _write_info(self, info: StackInfo | None) -> None:
        """`run.json`: what ran and where, for `harness.run.record` to read."""
        run = run_info(self.config, self.run_dir, run_id=self.run_id, status=self.status,
                       started_at=self.started_at, notes=self.notes,
                       aborted=self.aborted.info() if self.aborted else None,
                       postgres_version=info.postgres_version if info else None)
        layout.save_run_info(run, self.run_dir)


def _as_harness_error(failure: BaseException | None) -> HarnessError | None:
    if failure is None or isinstance(failure, HarnessError):
        return failure
    if isinstance(failure, KeyboardInterrupt):
        return Interrupted("interrupted")
    error = RunFailed(f"run failed: {failure}")
    error.__cause__ = failure
    return error

