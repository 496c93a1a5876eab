"""`harness run`: bring the stack up, drive it with Locust, record everything.

Locust runs as separate processes (a master and `--workers` local workers;
remote machines can join with `harness worker`), never inside this process:
Locust monkey-patches the interpreter with gevent on import. The harness
plugin inside Locust records exact histograms and writes `client.json`; this
process scrapes the service's `/metrics` at the edges of the measured window
and every few seconds, shows live progress, and finally combines both into
`result.json` (harness/analysis/collect.py).

Every path out of `run()` (success, Ctrl-C, SIGTERM, a component dying)
stops Locust, the service, the stub and the database in that order and keeps
what was measured; the exception that ended the run decides the exit code.
"""

from __future__ import annotations

import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import httpx

from harness.analysis import collect, server_metrics
from harness.model import result as results
from harness.outputs import markdown, timeseries
from harness.run.layout import point_latest
from harness.errors import HarnessError, Interrupted, RunFailed, UsageError
from harness.run.monitor import ProcessSampler, Scraper
from harness.stack.process import ManagedProcess, free_port
from harness.run.progress import Progress
from harness.stack.stack import Stack, StackConfig
from scenarios import SCENARIOS, SHAPE_NAMES, locustfiles_arg



@dataclass
class RunConfig:
    """Everything `harness run` was asked to do (validated by `validate`)."""

    scenario: str = "mixed"
    shape: str | None = None
    profile: str = "optimized"
    users: int = 50
    spawn_rate: float = 10.0
    duration_s: float = 60.0
    warmup_s: float = 10.0
    dataset: str = "small"
    seed: int = 42
    workers: int = 1
    remote_workers: int = 0
    master_bind_host: str = "127.0.0.1"
    target_workers: int = 1
    port: int = 0
    faults: str = "healthy"
    database_url: str | None = None
    out: Path = Path("reports")
    state_dir: Path = Path(".harness")
    pace_scale: float = 1.0
    target_cpus: set[int] | None = None
    locust_cpus: set[int] | None = None
    extra_target_env: dict[str, str] = field(default_factory=dict)

    def validate(self) -> None:
        if self.scenario not in SCENARIOS:
            raise UsageError(f"unknown scenario {self.scenario!r}; choose from "
                             f"{', '.join(SCENARIOS)}")
        if self.shape is not None and self.shape not in SHAPE_NAMES:
            raise UsageError(f"unknown shape {self.shape!r}; choose from {', '.join(SHAPE_NAMES)}")
        if self.users < 1 or self.spawn_rate <= 0:
            raise UsageError("--users must be at least 1 and --spawn-rate positive")
        if self.duration_s <= 0 or self.warmup_s < 0:
            raise UsageError("--duration must be positive and --warmup not negative")
        if self.workers < 0 or self.remote_workers < 0:
            raise UsageError("--workers must not be negative")
        if self.pace_scale < 0:
            raise UsageError("--pace-scale must not be negative")
        self.stack_config(self.out).validate()

    def stack_config(self, run_dir: Path) -> StackConfig:
        """The stack this run needs (the scenario may set target options, e.g.
        upstream_faults' short configuration freshness)."""
        return StackConfig(
            dataset=self.dataset, seed=self.seed, profile=self.profile,
            database_url=self.database_url, state_dir=self.state_dir, run_dir=run_dir,
            target_workers=self.target_workers, faults=self.faults, port=self.port,
            target_cpus=self.target_cpus,
            target_env={**SCENARIOS[self.scenario].target_env,
                        **self.extra_target_env})


def parse_duration(text: str) -> float:
    """`90`, `90s`, `2m`, `1h`, `1m30s` -> seconds; anything else is a usage error."""
    value = text.strip().lower()
    if not value:
        raise UsageError("empty duration")
    try:
        return float(value)
    except ValueError:
        pass
    total, number = 0.0, ""
    for ch in value:
        if ch.isdigit() or ch == ".":
            number += ch
        elif ch in "hms" and number:
            total += float(number) * {"h": 3600, "m": 60, "s": 1}[ch]
            number = ""
        else:
            raise UsageError(f"malformed duration {text!r} (use e.g. 90s, 2m, 1m30s)")
    if number:
        raise UsageError(f"malformed duration {text!r} (a number needs a unit: s, m or h)")
    return total


def _git() -> tuple[str | None, bool | None]:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=5, check=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                    capture_output=True, text=True, timeout=5).stdout.strip())
        return commit, dirty
    except (OSError, subprocess.SubprocessError):
        return None, None


def _version() -> str:
    try:
        return metadata.version("dashboard-perf-harness")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


@dataclass
class RunOutcome:
    run_dir: Path
    result: results.RunResult | None


class Run:
    """One `harness run`: call `execute()`; it raises what ended the run badly."""

    def __init__(self, config: RunConfig, progress: Progress) -> None:
        config.validate()
        self.config = config
        self.progress = progress
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        self.run_id = f"{stamp}-{config.scenario}-{config.profile}-{secrets.token_hex(2)}"
        self.runs_dir = config.out / "runs"
        self.run_dir = self.runs_dir / self.run_id
        self.locust_dir = self.run_dir / "locust"
        self.started_at = time.time()
        self.locust: list[ManagedProcess] = []
        self.status = "complete"
        self.notes: list[str] = []
        self.sampler = ProcessSampler()

    # ---- orchestration -------------------------------------------------------

    def execute(self) -> RunOutcome:
        cfg = self.config
        (self.run_dir / "logs").mkdir(parents=True, exist_ok=True)
        stack = Stack(cfg.stack_config(self.run_dir), on_phase=self.progress.phase,
                      on_seed_progress=self.progress.seed)
        failure: BaseException | None = None
        scraper: Scraper | None = None
        self.sampler.watch("harness", os.getpid())
        self.sampler.start()
        try:
            info = stack.up()
            scraper = Scraper(info.metrics_url, self.run_dir / "metrics")
            scraper.start()
            if stack.target is not None:
                self.sampler.watch("target", stack.target.pid)
            self._start_locust(info)
            for proc in self.locust:
                self.sampler.watch(proc.name.replace(" ", "-"), proc.pid)
            self._watch(stack)
        except BaseException as exc:  # noqa: BLE001 - recorded, re-raised after cleanup
            failure = exc
            self.status = "interrupted" if isinstance(exc, (Interrupted, KeyboardInterrupt)) \
                else "failed"
            self.notes.append(f"{type(exc).__name__}: {exc}")
        finally:
            self._stop_locust()
            self.sampler.stop()
            if scraper is not None:
                scraper.stop()
            result = self._finish(stack, scraper)
            self.progress.phase("stopping the stack")
            stack.down()
        if failure is not None:
            if isinstance(failure, HarnessError):
                raise failure
            if isinstance(failure, KeyboardInterrupt):
                raise Interrupted("interrupted") from failure
            raise RunFailed(f"run failed: {failure}") from failure
        return RunOutcome(self.run_dir, result)

    def _locust_args(self, info) -> list[str]:
        cfg = self.config
        args = ["-f", locustfiles_arg(cfg.scenario, cfg.shape), "--headless",
                "-u", str(cfg.users), "-r", str(cfg.spawn_rate),
                "-t", f"{int(cfg.warmup_s + cfg.duration_s)}s", "--host", info.target_url,
                "--stop-timeout", "5", "--exit-code-on-error", "0",
                "--harness-out", str(self.locust_dir), "--harness-warmup", str(cfg.warmup_s),
                "--harness-manifest", info.manifest, "--harness-seed", str(cfg.seed),
                "--harness-pace-scale", str(cfg.pace_scale)]
        if info.stub_url:
            args += ["--harness-stub-url", info.stub_url]
        if cfg.shape:
            args += ["--harness-shape", cfg.shape]
        return args

    def _start_locust(self, info) -> None:
        cfg = self.config
        self.locust_dir.mkdir(parents=True, exist_ok=True)
        base = [sys.executable, "-m", "locust"]
        logs = self.run_dir / "logs"
        expected = cfg.workers + cfg.remote_workers
        self.progress.phase(f"starting Locust ({expected} worker(s))" if expected
                            else "starting Locust")
        if expected == 0:
            self.locust.append(ManagedProcess("locust", base + self._locust_args(info),
                                              logs / "locust.log", cpus=cfg.locust_cpus).start())
            return
        port = free_port(cfg.master_bind_host)
        master = base + self._locust_args(info) + [
            "--master", "--expect-workers", str(expected),
            "--master-bind-host", cfg.master_bind_host, "--master-bind-port", str(port)]
        self.locust.append(ManagedProcess("locust master", master, logs / "locust-master.log",
                                          cpus=cfg.locust_cpus).start())
        if cfg.remote_workers:
            self.progress.phase(f"waiting for {cfg.remote_workers} remote worker(s): "
                                f"harness worker --master {cfg.master_bind_host}:{port} "
                                f"--scenario {cfg.scenario}")
        for n in range(cfg.workers):
            worker = base + ["-f", locustfiles_arg(cfg.scenario, cfg.shape), "--worker",
                             "--master-host", "127.0.0.1", "--master-port", str(port)]
            self.locust.append(ManagedProcess(f"locust worker {n + 1}", worker,
                                              logs / f"locust-worker-{n + 1}.log",
                                              cpus=cfg.locust_cpus).start())

    def _watch(self, stack: Stack) -> None:
        """Until Locust's master exits: progress and component health."""
        cfg = self.config
        master = self.locust[0]
        deadline = time.monotonic() + cfg.warmup_s + cfg.duration_s + 120
        live_path = self.locust_dir / "live.json"
        started = time.time()
        while master.alive:
            live = _read_json(live_path)
            if live is not None:
                live["elapsed_s"] = time.time() - started
            self.progress.live(live, cfg.warmup_s + cfg.duration_s)
            for component in (stack.target, stack.stub):
                if component is not None and not component.alive:
                    raise component.fail("exited during the run")
            for worker in self.locust[1:]:  # a worker leaves with 0 when the master quits
                if not worker.alive and worker.proc.returncode not in (0, None):
                    raise worker.fail(f"exited with code {worker.proc.returncode}")
            if time.monotonic() > deadline:
                raise master.fail("did not finish in time")
            time.sleep(0.25)
        code = master.proc.returncode if master.proc else None
        if code not in (0, None):
            raise master.fail(f"exited with code {code}")

    def _stop_locust(self) -> None:
        """SIGTERM a still-running master first (Locust quits gracefully and the plugin
        still collects the workers' final reports and writes client.json), then the rest."""
        for proc in self.locust:
            proc.stop(timeout=30)

    # ---- results -------------------------------------------------------------

    def _finish(self, stack: Stack, scraper: Scraper | None) -> results.RunResult | None:
        client = _read_json(self.locust_dir / "client.json")
        if client is None:
            self.notes.append("no client.json: Locust did not write its results "
                              f"(see {self.run_dir / 'logs'})")
            return None
        # the plugin scraped the service at the window's exact edges (see harness/loadgen/plugin.py)
        edges = {}
        for edge in ("start", "end"):
            path = self.locust_dir / "metrics" / f"window-{edge}.prom"
            if path.exists():
                edges[edge] = path.read_text()
                shutil.copy(path, self.run_dir / "metrics" / path.name)
        server = None
        if len(edges) == 2:
            server = server_metrics.summarize(edges["start"], edges["end"],
                                              scraper.during() if scraper else [])
        else:
            self.notes.append("server metrics missing for the window (no start/end scrape)")
        self.sampler.write_csv(self.run_dir / "processes.csv")
        client.setdefault("generator", {})["memory"] = self.sampler.memory_growth()
        result = collect.build(self._info(stack, client), client, server, artifacts={
            "processes": "processes.csv",
            "timeseries": "timeseries.csv", "summary": "summary.md", "histograms": "histograms/",
            "metrics": "metrics/", "logs": "logs/", "client": "locust/client.json",
            "dataset": "dataset.json"})
        results.save(result, self.run_dir / "result.json")
        timeseries.write_timeseries(client.get("windows", []), self.run_dir / "timeseries.csv")
        (self.run_dir / "summary.md").write_text(markdown.summary_markdown(result))
        hist = self.locust_dir / "histograms"
        if hist.is_dir() and not (self.run_dir / "histograms").exists():
            (self.run_dir / "histograms").symlink_to(Path("locust") / "histograms")
        point_latest(self.runs_dir, self.run_dir)
        return result

    def _info(self, stack: Stack, client: dict) -> results.RunInfo:
        cfg = self.config
        manifest = stack.manifest or {}
        commit, dirty = _git()
        if client.get("incomplete_workers"):
            self.notes.append(f"workers without a final report: {client['incomplete_workers']}")
        return results.RunInfo(
            run_id=self.run_id, status=self.status, scenario=cfg.scenario,
            shape=cfg.shape or "steady", profile=cfg.profile, users=cfg.users,
            spawn_rate=cfg.spawn_rate, duration_s=cfg.duration_s, warmup_s=cfg.warmup_s,
            workers=cfg.workers + cfg.remote_workers, target_workers=cfg.target_workers,
            faults=cfg.faults,
            dataset=results.DatasetInfo(preset=manifest.get("preset", cfg.dataset),
                                        seed=manifest.get("seed", cfg.seed),
                                        generator_version=manifest.get("generator_version", 0),
                                        anchor_date=manifest.get("anchor_date", "")),
            database="external" if cfg.database_url else "embedded",
            git_commit=commit, git_dirty=dirty, harness_version=_version(),
            python=platform.python_version(), platform=platform.platform(),
            cpu_count=os.cpu_count() or 1,
            started_at=_iso(self.started_at), measure_from=_iso(client.get("measure_from")),
            ended_at=_iso(client.get("ended_at") or time.time()), notes=self.notes)


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None

