"""Bring up and tear down everything a run measures: database, stub, target.

`Stack` is a context manager: whatever it started is stopped on the way out,
in reverse order, whether the block ended normally, raised, or was
interrupted (Ctrl-C, SIGTERM). The database clone made for the run is dropped;
the embedded server stops when its last user exits. The database and the stub
listen on 127.0.0.1 (only the target talks to them); the target on
`StackConfig.bind_host`, 127.0.0.1 unless a run spans machines, and its URL
for the load generators names the advertised address (`harness.stack.address`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import asyncpg
import httpx

from harness.errors import ConfigError, DatabaseError, HarnessError, UsageError
from harness.stack import address, database
from harness.stack.process import ManagedProcess, check_port_free, free_port
from harness.stubs.elevenlabs.faults import PRESETS as FAULT_PRESETS
from target_service.db.seed_data import PRESETS

log = logging.getLogger(__name__)
PROFILES = ("optimized", "naive")
HOST = "127.0.0.1"
"""Where the stub listens: only the target, on this machine, talks to it."""


@dataclass
class StackConfig:
    """What to bring up; `validate` checks it without touching the machine."""

    dataset: str = "small"
    seed: int = 42
    profile: str = "optimized"
    database_url: str | None = None
    state_dir: Path = Path(".harness")
    run_dir: Path = Path(".harness/stack")
    port: int = 0
    """The target's port; 0: a free one. Whether it is free is checked by `Stack.up`."""
    target_workers: int = 1
    faults: str = "healthy"
    target_cpus: set[int] | None = None
    target_env: dict[str, str] = field(default_factory=dict)
    target_source: Path | None = None
    """Another revision's checkout (`harness ab --b ref:...`): its `target_service` is
    started, and its migrations are applied to the run's clone of the dataset."""
    bind_host: str = address.LOOPBACK
    """Where the target listens: 0.0.0.0 or this machine's address when workers on other
    machines send it requests (`harness run --master-bind-host`)."""
    advertise_host: str | None = None
    """The address other machines reach the target at, in the URL Locust is given
    (`--advertise-host`); None: the bind host, or this machine's primary IPv4 address
    when bound to 0.0.0.0 (`address.advertised_host`)."""

    def validate(self) -> None:
        """A `UsageError` for a value that cannot work; opens no socket, starts nothing."""
        if self.dataset not in PRESETS:
            raise UsageError(f"unknown dataset {self.dataset!r}; choose from {', '.join(PRESETS)}")
        if self.profile not in PROFILES:
            raise UsageError(f"unknown profile {self.profile!r}; choose from {', '.join(PROFILES)}")
        if not 0 <= self.port <= 65535:
            raise UsageError(f"--port must be between 0 and 65535, not {self.port}")
        if self.target_workers < 1:
            raise UsageError("--target-workers must be at least 1")
        if self.database_url is not None and not self.database_url.startswith(
                ("postgresql://", "postgres://")):
            raise UsageError("--database-url must be a postgresql:// URL")
        if self.faults not in FAULT_PRESETS:
            raise UsageError(f"unknown fault preset {self.faults!r}; choose from "
                             f"{', '.join(sorted(FAULT_PRESETS))}")
        address.check_bind_host(self.bind_host)
        if self.advertise_host is not None:
            address.check_advertise_host(self.advertise_host, self.bind_host)


@dataclass
class StackInfo:
    """Where the running stack can be reached (printed by `harness stack up --json`)."""

    target_url: str
    """The URL the load generators are given, on every machine: the advertised address."""
    stub_url: str
    metrics_url: str
    """The target's `/metrics` as this machine reaches it (`local_url`)."""
    database_url: str
    manifest: str
    postgres_version: str
    """What the server says in `SHOW server_version`, e.g. "16.4"."""
    local_url: str = ""
    """The target as this machine reaches it (readiness, scrapes): the same as
    `target_url` unless the target is bound beyond loopback; empty: `target_url`."""

    def __post_init__(self) -> None:
        self.local_url = self.local_url or self.target_url

    def as_json(self) -> str:
        return json.dumps({"target_url": self.target_url, "stub_url": self.stub_url,
                           "metrics_url": self.metrics_url, "manifest": self.manifest,
                           "database_url": database.redact(self.database_url),
                           "postgres_version": self.postgres_version})


class Stack:
    """The database, the ElevenLabs stub and the target service of one run.

    Takes a validated config (`StackConfig.validate`, which the CLI runs once, before
    anything starts)."""

    def __init__(self, config: StackConfig, on_phase: Callable[[str], None] = lambda _: None,
                 on_seed_progress: Callable[[str, int], None] | None = None) -> None:
        self.config = config
        self.on_phase = on_phase
        self.on_seed_progress = on_seed_progress
        self.logs = config.run_dir / "logs"
        self._embedded: database.EmbeddedPostgres | None = None
        self._admin_dsn: str | None = None
        self._run_dsn: str | None = None
        self.target: ManagedProcess | None = None
        self._target_port: int | None = None
        self.advertised: str | None = None
        """The target's advertised address, once `preflight` found it."""
        self.stub: ManagedProcess | None = None
        self.stub_url: str | None = None
        self._stub_key = secrets.token_urlsafe(24)
        self.manifest: dict = {}
        self.info: StackInfo | None = None

    # ---- lifecycle ---------------------------------------------------------

    def __enter__(self) -> Self:
        try:
            self.up()
        except BaseException:
            self.down()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    def preflight(self) -> str:
        """The advertised address; first, as a `UsageError` before anything starts or is
        written, what the user must fix: a bind host that is not this machine's, a taken
        `--port`, no address to advertise. `up` calls it; a caller may call it earlier, and
        then `up` does not check again."""
        if self.advertised is not None:
            return self.advertised
        cfg = self.config
        address.check_listenable(cfg.bind_host)
        if cfg.port:
            check_port_free(cfg.bind_host, cfg.port)
        self.advertised = address.advertised_host(cfg.bind_host, cfg.advertise_host,
                                                  address.primary_ipv4)
        return self.advertised

    def up(self) -> StackInfo:
        """Start everything; the caller must call `down` (also when this raises)."""
        cfg = self.config
        self.preflight()  # before any seeding: a taken port is the user's to fix, at once
        self.logs.mkdir(parents=True, exist_ok=True)
        self._admin_dsn, postgres_version = self._start_database()
        self.on_phase(f"preparing dataset {cfg.dataset} (seed {cfg.seed})")
        dataset = asyncio.run(database.ensure_dataset(
            self._admin_dsn, cfg.dataset, cfg.seed, optimized=cfg.profile == "optimized",
            progress=self.on_seed_progress))
        self.manifest = dataset.manifest
        self.on_phase("cloning the dataset for this run")
        self._run_dsn = asyncio.run(database.clone(self._admin_dsn, dataset.template))
        if cfg.target_source is not None:
            self.on_phase(f"applying {cfg.target_source.name}'s migrations to the clone")
            _migrate_from(cfg.target_source, self._run_dsn, cfg.profile == "optimized",
                          self.logs / "migrate.log")
        manifest_path = cfg.run_dir / "dataset.json"
        manifest_path.write_text(json.dumps(self.manifest, indent=1))
        self.on_phase(f"starting the ElevenLabs stub (faults: {cfg.faults})")
        self.stub_url = self._start_stub(manifest_path)
        self.on_phase(f"starting the target service ({cfg.profile})")
        local_url = self._start_target()
        self.info = StackInfo(target_url=f"http://{self.advertised}:{self._target_port}",
                              stub_url=self.stub_url, metrics_url=f"{local_url}/metrics",
                              database_url=self._run_dsn, manifest=str(manifest_path.resolve()),
                              postgres_version=postgres_version, local_url=local_url)
        return self.info

    def down(self) -> None:
        """Stop everything this stack started, in reverse order.

        Never raises and is safe to call twice or after a failed (or interrupted) `up`:
        each step forgets what it stops before trying, and a step that fails (or is
        interrupted by a second Ctrl-C) is logged and the next one still runs."""
        target, self.target = self.target, None
        if target is not None:
            _guarded("stopping the target service", target.stop)
        stub, self.stub = self.stub, None
        if stub is not None:
            _guarded("stopping the ElevenLabs stub", stub.stop)
        run_dsn, self._run_dsn = self._run_dsn, None
        if run_dsn and self._admin_dsn:
            admin = self._admin_dsn
            _guarded("dropping the run database",
                     lambda: asyncio.run(database.drop(admin, run_dsn)))
        embedded, self._embedded = self._embedded, None
        if embedded is not None:
            _guarded("stopping embedded PostgreSQL", embedded.stop)

    @property
    def admin_dsn(self) -> str | None:
        """The server's admin URL (what `--chaos db-disconnect` terminates backends with)."""
        return self._admin_dsn

    @property
    def embedded(self) -> database.EmbeddedPostgres | None:
        """The embedded server, None on an external database."""
        return self._embedded

    def restart_target(self) -> int:
        """Start the target again after it died (`--chaos target-kill` of a single-worker
        target: nothing else restarts it), on the same port with the same settings; the
        new pid once it is ready. Call it from the main thread (see harness.stack.process:
        a child is tied to the thread that started it)."""
        if self._target_port is None:
            raise ConfigError("the target was never started")
        old, self.target = self.target, None
        if old is not None:
            old.stop(timeout=5)  # reaps the killed process and anything left in its group
        self._start_target(self._target_port)
        return self.target.pid

    # ---- components --------------------------------------------------------

    def _start_database(self) -> tuple[str, str]:
        """The admin URL and the server's version."""
        cfg = self.config
        if cfg.database_url:  # a URL the user gave that does not work: exit 2
            self.on_phase(f"connecting to {database.redact(cfg.database_url)}")
            dsn, error = cfg.database_url, ConfigError
        else:
            self.on_phase("starting embedded PostgreSQL")
            self._embedded = database.EmbeddedPostgres(cfg.state_dir / "pg")
            dsn, error = self._embedded.start(), DatabaseError
        return dsn, asyncio.run(_server_version(dsn, error))

    def _start_stub(self, manifest: Path) -> str:
        """The ElevenLabs stand-in; its key travels by environment, never on argv."""
        self.stub = ManagedProcess(
            "ElevenLabs stub",
            [sys.executable, "-m", "harness.stubs.elevenlabs", "--manifest", str(manifest),
             "--port", "0", "--host", HOST, "--faults", self.config.faults],
            self.logs / "stub.log", env={"STUB_API_KEY": self._stub_key},
            cpus=self.config.target_cpus).start()
        found: dict[str, str] = {}

        def ready() -> bool:  # this stub's line: a reused state dir's log holds older ones
            for line in self.stub.log_since_start().splitlines():
                if line.startswith('{"stub_url"'):
                    found.update(json.loads(line))
                    return True
            return False

        self.stub.wait_until(ready, timeout=30, what="serving")
        return found["stub_url"]

    def _start_target(self, port: int | None = None) -> str:
        """Start the target on the bind host; its URL as this machine reaches it."""
        cfg = self.config
        port = port or cfg.port or free_port(cfg.bind_host)
        self._target_port = port
        url = f"http://{address.local_host(cfg.bind_host)}:{port}"
        env = {
            "TARGET_DATABASE_URL": self._run_dsn or "",
            "TARGET_PROFILE": cfg.profile,
            "TARGET_HOST": cfg.bind_host,
            "TARGET_PORT": str(port),
            "TARGET_WORKERS": str(cfg.target_workers),
            "TARGET_ELEVENLABS_ENABLED": "true",
            "TARGET_ELEVENLABS__BASE_URL": self.stub_url or "",
            "TARGET_ELEVENLABS__API_KEY": self._stub_key,
            **cfg.target_env,
        }
        if cfg.target_workers > 1:  # a restarted target starts counting from zero again
            metrics_dir = cfg.run_dir / "prometheus-multiproc"
            shutil.rmtree(metrics_dir, ignore_errors=True)
            metrics_dir.mkdir(parents=True)
            env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir.resolve())
        source = cfg.target_source.resolve() if cfg.target_source else None
        if source is not None:  # `-m` puts the cwd first on sys.path: that revision's code
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(source),
                                                              os.environ.get("PYTHONPATH")]))
        self.target = ManagedProcess("target service", [sys.executable, "-m", "target_service"],
                                     self.logs / "target.log", env=env, cwd=source,
                                     cpus=cfg.target_cpus).start()

        def ready() -> bool:
            return httpx.get(f"{url}/readyz", timeout=1.0).status_code == 200

        self.target.wait_until(ready, timeout=60, what="ready")
        return url


_MIGRATE = """\
import asyncio, sys
import asyncpg
from target_service.db import migrate

async def main(dsn, optimized):
    conn = await asyncpg.connect(dsn)
    try:
        applied = await migrate.migrate(conn, optimized=optimized)
    finally:
        await conn.close()
    print("applied", [m.version for m in applied])

asyncio.run(main(sys.argv[1], sys.argv[2] == "1"))
"""


def _migrate_from(source: Path, dsn: str, optimized: bool, log_path: Path) -> None:
    """Apply `source`'s own migrations (its code, its SQL files) to the run's clone: a
    revision that adds an index is measured with it; one whose applied migration was
    edited since is refused by its runner, as it would be in production."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", _MIGRATE, dsn, "1" if optimized else "0"],
            check=False, cwd=source.resolve(), capture_output=True, text=True,
            timeout=600,
            env={**os.environ, "PYTHONPATH": str(source.resolve())})
    except (OSError, subprocess.SubprocessError) as exc:
        raise DatabaseError(f"migrating the clone from {source} failed: {exc}") from exc
    log_path.write_text(database.redact_text(done.stdout + done.stderr), encoding="utf-8")
    if done.returncode:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise DatabaseError(f"{source.name}'s migrations failed on the clone: "
                            f"{database.redact_text(last)} (see {log_path})")


async def _server_version(dsn: str, error: type[HarnessError]) -> str:
    """`SHOW server_version` (also proves the server answers); `error` when it does not."""
    conn = await database.connect(dsn, error=error, timeout=5)
    try:
        return str(await conn.fetchval("SHOW server_version"))
    except (asyncpg.PostgresError, OSError) as exc:
        raise error(f"PostgreSQL at {database.redact(dsn)} did not answer: {exc}") from exc
    finally:
        await conn.close()


def _guarded(what: str, step: Callable[[], object]) -> None:
    """Run one teardown step; log instead of raising (a second Ctrl-C included)."""
    try:
        step()
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - teardown goes on
        log.warning("%s failed: %s: %s", what, type(exc).__name__, exc)
