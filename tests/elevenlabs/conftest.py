"""Fixtures for the ElevenLabs stub and client tests.

One stub process serves the whole module set (starting it costs ~0.4 s); an
autouse fixture puts it back to ``healthy`` with fresh stats before every
test that uses it, so tests stay independent.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.stubs.elevenlabs import StubProcess, start_stub
from harness.stubs.elevenlabs.agents import make_agent_id
from target_service.elevenlabs import ElevenLabsClient, ElevenLabsMetrics, ElevenLabsSettings

API_KEY = "xi_test_key_3f9c1d7e5b2a4c68"
N_AGENTS = 20


def write_manifest(path: Path, n_agents: int = N_AGENTS, seed: int = 42) -> Path:
    agents = [{"agent_id": i + 1, "user_id": 1 + i % 4,
               "elevenlabs_agent_id": make_agent_id(seed, i),
               "name": f"Sales Assistant {i + 1}", "status": "active"}
              for i in range(n_agents)]
    users = [{"user_id": u, "api_key": f"dk_user_{u}",
              "agent_ids": [a["agent_id"] for a in agents if a["user_id"] == u],
              "elevenlabs_agent_ids": [a["elevenlabs_agent_id"] for a in agents
                                       if a["user_id"] == u],
              "weight": 0.25} for u in range(1, 5)]
    manifest = {"preset": "tiny", "seed": seed, "generator_version": 1,
                "anchor_date": "2026-11-29", "users": users, "agents": agents}
    path.write_text(json.dumps(manifest))
    return path


@pytest.fixture(scope="session")
def manifest_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_manifest(tmp_path_factory.mktemp("dataset") / "dataset.json")


@pytest.fixture(scope="session")
def agent_ids(manifest_path: Path) -> list[str]:
    return [a["elevenlabs_agent_id"] for a in json.loads(manifest_path.read_text())["agents"]]


@pytest.fixture(scope="session")
def stub_process(manifest_path: Path,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[StubProcess]:
    log_path = tmp_path_factory.mktemp("logs") / "elevenlabs-stub.log"
    stub = start_stub(manifest_path, API_KEY, faults="healthy", log_path=log_path,
                      fault_seed=1234)
    try:
        yield stub
    finally:
        stub.stop()


@pytest.fixture
def stub(stub_process: StubProcess) -> StubProcess:
    """The shared stub, reset to healthy with zeroed stats."""
    assert stub_process.is_running(), stub_process.log_tail()
    stub_process.admin.set_faults(preset="healthy")
    stub_process.admin.reset_stats()
    return stub_process


def fast_settings(base_url: str, **overrides: Any) -> ElevenLabsSettings:
    """Client settings with the retry schedule scaled down 100x (10, 20, 40 ms)."""
    values: dict[str, Any] = {
        "base_url": base_url, "api_key": API_KEY, "retry_base_delay_s": 0.01,
        "connect_timeout_s": 1.0, "read_timeout_s": 2.0, "attempt_timeout_s": 2.0,
        "request_deadline_s": 5.0, "page_budget_s": 5.0,
        "breaker_failure_threshold": 1000, "breaker_cooldown_s": 0.3,
    }
    values.update(overrides)
    return ElevenLabsSettings(**values)


ClientFactory = Callable[..., ElevenLabsClient]


@pytest.fixture
async def make_client(stub: StubProcess) -> AsyncIterator[ClientFactory]:
    """``make_client(**settings_overrides)`` -> client on the stub, closed after the test."""
    clients: list[ElevenLabsClient] = []

    def factory(**overrides: Any) -> ElevenLabsClient:
        client = ElevenLabsClient(fast_settings(stub.url, **overrides),
                                  metrics=ElevenLabsMetrics.private())
        clients.append(client)
        return client

    yield factory
    for client in clients:
        await client.aclose()
