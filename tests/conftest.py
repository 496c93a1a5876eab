"""Shared fixtures: a real PostgreSQL (embedded by default), seeded `tiny` datasets,
and the service driven in-process through `httpx.ASGITransport`.

Set `HARNESS_TEST_DATABASE_URL` to run the suite against an external server
instead of the embedded one (the role needs CREATEDB).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from harness.stack import database
from harness.stubs.elevenlabs import StubProcess, start_stub
from target_service.app import create_app
from target_service.settings import Settings

TEST_SEED = 7


@pytest.fixture(scope="session")
def pg_admin_dsn() -> str:
    """Admin URL of the PostgreSQL server the tests use; stopped and removed at the end.

    Not under pytest's tmp_path: pytest makes its base directory private (0700)
    on every start, and the embedded server runs as another OS user when the
    tests run as root, so a concurrent pytest could lock it out.
    """
    external = os.environ.get("HARNESS_TEST_DATABASE_URL")
    if external:
        yield external
        return
    with private_postgres("harness-test-pg-") as server:
        yield server.start()


@contextmanager
def private_postgres(prefix: str) -> Iterator[database.EmbeddedPostgres]:
    """An embedded server of its own, in a fresh directory (not under pytest's tmp_path,
    see `pg_admin_dsn`), started; stopped and removed on the way out. For tests that
    restart, pause or kill the server, which must not pull the shared one from under
    every other test."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    server = database.EmbeddedPostgres(root / "data")
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Datasets:
    """The tiny dataset's two templates (base schema only, and optimized)."""

    admin_dsn: str
    base: database.Dataset
    optimized: database.Dataset

    @property
    def manifest(self) -> dict:
        return self.optimized.manifest

    async def clone(self, profile: str) -> str:
        template = self.optimized if profile == "optimized" else self.base
        return await database.clone(self.admin_dsn, template.template, purpose="test")

    async def drop(self, dsn: str) -> None:
        await database.drop(self.admin_dsn, dsn)


@pytest.fixture(scope="session")
async def datasets(pg_admin_dsn: str) -> Datasets:
    base = await database.ensure_dataset(pg_admin_dsn, "tiny", TEST_SEED, optimized=False)
    opt = await database.ensure_dataset(pg_admin_dsn, "tiny", TEST_SEED, optimized=True)
    return Datasets(pg_admin_dsn, base, opt)


@pytest.fixture(scope="session")
async def shared_dbs(datasets: Datasets) -> AsyncIterator[dict[str, str]]:
    """One read-mostly clone per profile, shared by tests that do not write."""
    dsns = {p: await datasets.clone(p) for p in ("optimized", "naive")}
    yield dsns
    for dsn in dsns.values():
        await datasets.drop(dsn)


@pytest.fixture
async def fresh_db(datasets: Datasets) -> AsyncIterator[Callable[[str], object]]:
    """Factory of private clones for tests that write; dropped afterwards."""
    made: list[str] = []

    async def make(profile: str = "optimized") -> str:
        dsn = await datasets.clone(profile)
        made.append(dsn)
        return dsn

    yield make
    for dsn in made:
        await datasets.drop(dsn)


@asynccontextmanager
async def running_app(dsn: str, profile: str = "optimized",
                      **overrides: object) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The service with its lifespan running, and a client talking to it in-process.

    ElevenLabs is off unless the test passes `elevenlabs=...` (a stub's URL):
    no test ever reaches for the real API.
    """
    overrides.setdefault("elevenlabs_enabled", "elevenlabs" in overrides)
    # a test process builds hundreds of apps: freezing would collect its whole heap each
    # time (tests/target_service/test_runtime_metrics.py checks the freeze itself)
    overrides.setdefault("gc_freeze", False)
    settings = Settings(database_url=dsn, profile=profile, **overrides)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://target") as client:
            yield app, client


@contextmanager
def healthy_stub_for(manifest: dict, root: Path, key: str, fault_seed: int
                     ) -> Iterator[StubProcess]:
    """The ElevenLabs stub serving `manifest`'s agents with `key`, healthy, logging under
    `root`; stopped on the way out (the module-scoped stub fixtures of the service tests)."""
    path = root / "dataset.json"
    path.write_text(json.dumps(manifest))
    process = start_stub(path, key, faults="healthy", log_path=root / "stub.log",
                         fault_seed=fault_seed)
    try:
        yield process
    finally:
        process.stop()


def auth(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


def busiest_user(manifest: dict) -> dict:
    return max(manifest["users"], key=lambda u: u["weight"])


def two_users(manifest: dict) -> tuple[dict, dict]:
    ranked = sorted(manifest["users"], key=lambda u: u["weight"], reverse=True)
    return ranked[0], ranked[1]


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


def harness_cli(monkeypatch, *args: str) -> int:
    """`harness ARGS` run in this process; its exit code. The CLI installs its own
    SIGINT/SIGTERM handlers: here they are skipped, so pytest keeps its own."""
    from harness import cli

    monkeypatch.setattr(cli.signal, "signal", lambda *_: None)
    monkeypatch.setattr(sys, "argv", ["harness", *args])
    try:
        cli.main()
    except SystemExit as exc:
        return exc.code or 0
    return 0
