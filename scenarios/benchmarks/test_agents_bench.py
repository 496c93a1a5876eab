"""The agents page's upstream work: 20 agents, ElevenLabs stub at a fixed 100 ms.

Cold cache in every round (no config cache), so each round really calls the
stub for all 20 agents. `test_agents_single_upstream_call` is the reference:
parallel fetching should cost under 2x one call, sequential about 20x.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from harness.stubs.elevenlabs import start_stub
from target_service.elevenlabs.client import ElevenLabsClient, build_http_client
from target_service.elevenlabs.settings import ElevenLabsSettings
from target_service.services.agent_configs import UpstreamConfigResolver

KEY = "bench-key"
AGENTS = 20
LATENCY_MS = 100


@pytest.fixture(scope="module")
def stub_url(bench_dbs, tmp_path_factory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("stub")
    manifest = root / "dataset.json"
    manifest.write_text(json.dumps(bench_dbs["manifest"]))
    stub = start_stub(manifest, KEY, log_path=root / "stub.log", latency_ms=LATENCY_MS)
    try:
        yield stub.url
    finally:
        stub.stop()


@pytest.fixture(scope="module")
def agent_rows(bench_dbs):
    profiled = bench_dbs["optimized"]
    rows = profiled.run(profiled.db.fetch(
        "bench_agents", "SELECT elevenlabs_agent_id, config_snapshot, snapshot_updated_at "
                        "FROM agents ORDER BY id LIMIT $1", AGENTS))
    assert len(rows) == AGENTS
    return rows


def _resolver(bench_dbs, stub_url: str, *, parallel: bool):
    profiled = bench_dbs["optimized"]
    settings = ElevenLabsSettings(base_url=stub_url, api_key=KEY, parallel=parallel,
                                  page_budget_s=10, request_deadline_s=10)
    http = build_http_client(settings)
    client = ElevenLabsClient(settings, http)
    return UpstreamConfigResolver(client, profiled.db, profiled.settings, cache=None,
                                  jobs=None), http


def _bench_page(benchmark, bench_dbs, stub_url, rows, parallel: bool) -> None:
    resolver, http = _resolver(bench_dbs, stub_url, parallel=parallel)
    run = bench_dbs["optimized"].run
    try:
        run(resolver.resolve(rows))  # open the connections first: measure the fetch
        resolved = benchmark.pedantic(lambda: run(resolver.resolve(rows)), rounds=8,
                                      warmup_rounds=1)
    finally:
        run(http.aclose())
    assert {r.source for r in resolved.values()} == {"live"}


def test_agents_single_upstream_call(benchmark, bench_dbs, stub_url, agent_rows):
    resolver, http = _resolver(bench_dbs, stub_url, parallel=True)
    run = bench_dbs["optimized"].run
    one = agent_rows[0]["elevenlabs_agent_id"]
    try:
        run(resolver.client.get_agent(one))
        benchmark.pedantic(lambda: run(resolver.client.get_agent(one)), rounds=8)
    finally:
        run(http.aclose())


def test_agents_page_parallel(benchmark, bench_dbs, stub_url, agent_rows):
    _bench_page(benchmark, bench_dbs, stub_url, agent_rows, parallel=True)


def test_agents_page_sequential(benchmark, bench_dbs, stub_url, agent_rows):
    _bench_page(benchmark, bench_dbs, stub_url, agent_rows, parallel=False)
