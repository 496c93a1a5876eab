"""Fixtures for the benchmark suites: a real PostgreSQL with the `small` dataset.

Run with `pytest scenarios/benchmarks --benchmark-json=FILE`. The embedded
server under `.harness/pg` is used (and its dataset templates reused), or
`HARNESS_DATABASE_URL` when set. Each profile gets its own fresh clone, and
every benchmark of a pair (`*_naive` / `*_optimized`) fetches data for the
same, busiest user, so the pair's ratio is the optimization's effect.

At the end, the terminal summary and the JSON (`speedups`) report the
naive/optimized ratio of every pair measured in the run.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from harness.stack import database
from target_service.db.pool import Database
from target_service.settings import Settings
from target_service.telemetry import ServiceMetrics

DATASET = os.environ.get("BENCH_DATASET", "small")
SEED = 42


@dataclass
class Profiled:
    """A service-side database handle for one profile, and the loop that drives it."""

    settings: Settings
    db: Database
    loop: asyncio.AbstractEventLoop

    def run(self, coro):
        return self.loop.run_until_complete(coro)


@pytest.fixture(scope="session")
def bench_loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(scope="session")
def bench_admin_dsn() -> Iterator[str]:
    url = os.environ.get("HARNESS_DATABASE_URL")
    if url:
        yield url
        return
    server = database.EmbeddedPostgres(Path(".harness") / "pg")
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="session")
def bench_dbs(bench_admin_dsn: str,
              bench_loop: asyncio.AbstractEventLoop) -> Iterator[dict[str, Profiled]]:
    """One fresh clone and pool per profile; the busiest user's manifest entry."""
    made: dict[str, Profiled] = {}
    dsns: list[str] = []
    run = bench_loop.run_until_complete
    try:
        for profile in ("optimized", "naive"):
            ds = run(database.ensure_dataset(bench_admin_dsn, DATASET, SEED,
                                             optimized=profile == "optimized"))
            dsn = run(database.clone(bench_admin_dsn, ds.template, purpose="bench"))
            dsns.append(dsn)
            settings = Settings(database_url=dsn, profile=profile)
            db = run(Database.connect(settings, ServiceMetrics(CollectorRegistry())))
            made[profile] = Profiled(settings, db, bench_loop)
        made["manifest"] = ds.manifest  # type: ignore[assignment]
        yield made
    finally:
        for p in ("optimized", "naive"):
            if p in made:
                run(made[p].db.close())
        for dsn in dsns:
            run(database.drop(bench_admin_dsn, dsn))


@pytest.fixture(scope="session")
def busy_user(bench_dbs) -> dict:
    return max(bench_dbs["manifest"]["users"], key=lambda u: u["weight"])


PAIRS = (("_naive", "_optimized"), ("_sequential", "_parallel"), ("_optimized", "_cached"))


def _pairs(benchmarks) -> dict[str, float]:
    """slow/fast ratios of medians for every pair of benchmarks named stem_slow/stem_fast."""
    medians = {b.name: b.stats.median for b in benchmarks if b.stats is not None}
    out: dict[str, float] = {}
    for slow_suffix, fast_suffix in PAIRS:
        for name, slow in medians.items():
            if name.endswith(slow_suffix):
                stem = name[: -len(slow_suffix)]
                fast = medians.get(stem + fast_suffix)
                if fast:
                    out[f"{stem}: {slow_suffix[1:]}/{fast_suffix[1:]}"] = slow / fast
    return out


def pytest_benchmark_update_json(config, benchmarks, output_json) -> None:
    output_json["speedups_by_median"] = _pairs(benchmarks)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    session = getattr(config, "_benchmarksession", None)
    if session is None or not session.benchmarks:
        return
    pairs = _pairs(session.benchmarks)
    if pairs:
        terminalreporter.section("speedups (ratio of medians, same run)")
        for name, ratio in pairs.items():
            terminalreporter.write_line(f"{name:50s} {ratio:8.1f}x")
