"""Bring up and tear down everything a run measures: database, stub, target.

`Stack` is a context manager: whatever it started is stopped on the way out,
in reverse order, whether the block ended normally, raised, or was
interrupted (Ctrl-C, SIGTERM). The database clone made for the run is dropped
unless `keep_database` is set; the embedded server stops when its last user
exits.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx

from harness.stack import database
from harness.errors import ConfigError, HarnessError, UsageError
from harness.stack.process import ManagedProcess, check_port_free, free_port
from harness.stubs.elevenlabs.faults import PRESETS as FAULT_PRESETS
from target_service.db.seed_data import PRESETS

log = logging.getLogger(__name__)
PROFILES = ("optimized", "naive")


@dataclass
class StackConfig:
    """What to bring up; validated before anything starts."""

    dataset: str = "small"
    seed: int = 42
    profile: str = "optimized"
    database_url: str | None = None
    state_dir: Path = Path(".harness")
    run_dir: Path = Path(".harness/stack")
    host: str = "127.0.0.1"
    port: int = 0
    target_workers: int = 1
    keep_database: bool = False
    faults: str = "healthy"
    stub: bool = True
    target_cpus: set[int] | None = None
    target_env: dict[str, str] = field(default_factory=dict)

    def validate(self) -> None:
        if self.dataset not in PRESETS:
            raise UsageError(f"unknown dataset {self.dataset!r}; choose from {', '.join(PRESETS)}")
        if self.profile not in PROFILES:
            raise UsageError(f"unknown profile {self.profile!r}; choose from {', '.join(PROFILES)}")
        if self.target_workers < 1:
            raise UsageError("--target-workers must be at least 1")
        if self.database_url is not None and not self.database_url.startswith(
                ("postgresql://", "postgres://")):
            raise UsageError("--database-url must be a postgresql:// URL")
        if self.faults not in FAULT_PRESETS:
            raise UsageError(f"unknown fault preset {self.faults!r}; choose from "
                             f"{', '.join(sorted(FAULT_PRESETS))}")
        if self.port:
            check_port_free(self.host, self.port)


@dataclass
class StackInfo:
    """Where the running stack can be reached (printed by `harness stack up --json`)."""

    target_url: str
    metrics_url: str
    database_url: str
    manifest: str
    stub_url: str | None = None

    def as_json(self) -> str:
        return json.dumps({"target_url": self.target_url, "stub_url": self.stub_url,
                           "metrics_url": self.metrics_url, "manifest": self.manifest,
                           "database_url": database.redact(self.database_url)})


class Stack:
    """The database, the ElevenLabs stub and the target service of one run."""

    def __init__(self, config: StackConfig, on_phase: Callable[[str], None] = lambda _: None,
                 on_seed_progress: Callable[[str, int], None] | None = None) -> None:
        config.validate()
        self.config = config
        self.on_phase = on_phase
        self.on_seed_progress = on_seed_progress
        self.logs = config.run_dir / "logs"
        self._embedded: database.EmbeddedPostgres | None = None
        self._admin_dsn: str | None = None
        self._run_dsn: str | None = None
        self.target: ManagedProcess | None = None
        self.stub: ManagedProcess | None = None
        self.stub_url: str | None = None
        self._stub_key = secrets.token_urlsafe(24)
        self.manifest: dict = {}
        self.info: StackInfo | None = None

    # ---- lifecycle ---------------------------------------------------------

    def __enter__(self) -> Stack:
        try:
            self.up()
        except BaseException:
            self.down()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    def up(self) -> StackInfo:
        cfg = self.config
        self.logs.mkdir(parents=True, exist_ok=True)
        self._admin_dsn = self._start_database()
        self.on_phase(f"preparing dataset {cfg.dataset} (seed {cfg.seed})")
        dataset = asyncio.run(database.ensure_dataset(
            self._admin_dsn, cfg.dataset, cfg.seed, optimized=cfg.profile == "optimized",
            progress=self.on_seed_progress))
        self.manifest = dataset.manifest
        self.on_phase("cloning the dataset for this run")
        self._run_dsn = asyncio.run(database.clone(self._admin_dsn, dataset.template))
        manifest_path = cfg.run_dir / "dataset.json"
        manifest_path.write_text(json.dumps(self.manifest, indent=1))
        if cfg.stub:
            self.on_phase(f"starting the ElevenLabs stub (faults: {cfg.faults})")
            self.stub_url = self._start_stub(manifest_path)
        self.on_phase(f"starting the target service ({cfg.profile})")
        target_url = self._start_target()
        self.info = StackInfo(target_url=target_url, metrics_url=f"{target_url}/metrics",
                              database_url=self._run_dsn, manifest=str(manifest_path.resolve()),
                              stub_url=self.stub_url)
        return self.info

    def down(self) -> None:
        """Stop everything this stack started; safe to call twice or after a failed `up`."""
        if self.target is not None:
            self.target.stop()
            self.target = None
        if self.stub is not None:
            self.stub.stop()
            self.stub = None
        if self._run_dsn and self._admin_dsn and not self.config.keep_database:
            try:
                asyncio.run(database.drop(self._admin_dsn, self._run_dsn))
            except (HarnessError, OSError, asyncpg.PostgresError) as exc:
                log.warning("could not drop run database: %s", exc)
            self._run_dsn = None
        if self._embedded is not None:
            self._embedded.stop()
            self._embedded = None

    # ---- components --------------------------------------------------------

    def _start_database(self) -> str:
        cfg = self.config
        if cfg.database_url:
            self.on_phase(f"connecting to {database.redact(cfg.database_url)}")
            asyncio.run(_check_reachable(cfg.database_url))
            return cfg.database_url
        self.on_phase("starting embedded PostgreSQL")
        self._embedded = database.EmbeddedPostgres(cfg.state_dir / "pg")
        return self._embedded.start()

    def _start_stub(self, manifest: Path) -> str:
        """The ElevenLabs stand-in; its key travels by environment, never on argv."""
        self.stub = ManagedProcess(
            "ElevenLabs stub",
            [sys.executable, "-m", "harness.stubs.elevenlabs", "--manifest", str(manifest),
             "--port", "0", "--host", self.config.host, "--faults", self.config.faults],
            self.logs / "stub.log", env={"STUB_API_KEY": self._stub_key},
            cpus=self.config.target_cpus).start()
        found: dict[str, str] = {}

        def ready() -> bool:
            for line in self.stub.log_path.read_text(errors="replace").splitlines():
                if line.startswith('{"stub_url"'):
                    found.update(json.loads(line))
                    return True
            return False

        self.stub.wait_until(ready, timeout=30, what="serving")
        return found["stub_url"]

    def _start_target(self) -> str:
        cfg = self.config
        port = cfg.port or free_port(cfg.host)
        url = f"http://{cfg.host}:{port}"
        env = {
            "TARGET_DATABASE_URL": self._run_dsn or "",
            "TARGET_PROFILE": cfg.profile,
            "TARGET_HOST": cfg.host,
            "TARGET_PORT": str(port),
            "TARGET_WORKERS": str(cfg.target_workers),
            "TARGET_ELEVENLABS_ENABLED": "true" if self.stub_url else "false",
            "TARGET_ELEVENLABS__BASE_URL": self.stub_url or "",
            "TARGET_ELEVENLABS__API_KEY": self._stub_key,
            **cfg.target_env,
        }
        if cfg.target_workers > 1:
            metrics_dir = cfg.run_dir / "prometheus-multiproc"
            shutil.rmtree(metrics_dir, ignore_errors=True)
            metrics_dir.mkdir(parents=True)
            env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir.resolve())
        self.target = ManagedProcess("target service", [sys.executable, "-m", "target_service"],
                                     self.logs / "target.log", env=env,
                                     cpus=cfg.target_cpus).start()

        def ready() -> bool:
            return httpx.get(f"{url}/readyz", timeout=1.0).status_code == 200

        self.target.wait_until(ready, timeout=60, what="ready")
        return url


async def _check_reachable(dsn: str) -> None:
    conn = await database.connect(dsn, error=ConfigError, timeout=5)
    await conn.close()
