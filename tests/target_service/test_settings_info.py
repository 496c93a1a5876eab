"""`target_settings_info` on /metrics: the settings really in force, and never a secret.

The harness records these labels as the run's target configuration, so they
must show an environment override (not what the profile's name implies), be
one series however many uvicorn workers serve, and leak neither the
ElevenLabs API key nor the database URL.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from target_service.elevenlabs.settings import ElevenLabsSettings
from target_service.settings import (
    PROFILES,
    CacheSettings,
    PoolSettings,
    Settings,
    Toggles,
    effective_settings,
)
from tests.conftest import running_app

NAME = "target_settings_info"
API_KEY = "sk-el-Zq7xSECRETkey-4242"
PASSWORD = "pw-Vx9SECRETpass-1717"
UPSTREAM = "http://elevenlabs-secret-host.invalid:9"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    """Only what a test sets itself reaches Settings() from the environment."""
    for name in list(os.environ):
        if name.startswith("TARGET_") or name == "PROMETHEUS_MULTIPROC_DIR":
            monkeypatch.delenv(name)


def settings_samples(text: str) -> list:
    return [s for family in text_string_to_metric_families(text) for s in family.samples
            if s.name == NAME]


def settings_labels(text: str) -> dict[str, str]:
    """The labels of the single `target_settings_info` series (which must be 1)."""
    samples = settings_samples(text)
    assert len(samples) == 1, samples
    assert samples[0].value == 1
    return samples[0].labels


async def scrape(dsn: str, profile: str = "optimized", **overrides) -> tuple[dict, str, object]:
    async with running_app(dsn, profile, **overrides) as (app, client):
        text = (await client.get("/metrics")).text
    return settings_labels(text), text, app.state.settings


@pytest.mark.parametrize("profile", sorted(PROFILES))
async def test_the_profile_and_every_toggle_are_labels(shared_dbs, profile):
    labels, _, settings = await scrape(shared_dbs[profile], profile)
    assert labels == effective_settings(settings)
    assert labels["profile"] == profile
    for name, on in PROFILES[profile].model_dump().items():
        assert labels[f"toggle_{name}"] == ("true" if on else "false"), name
    assert labels["version"] == version("dashboard-perf-harness")


async def test_pool_cache_upstream_and_http_settings_are_labels(shared_dbs):
    labels, _, _ = await scrape(shared_dbs["optimized"], kpi_debounce_s=0.2,
                                chart_timeout_s=1.5, pool={"max_size": 7})
    assert {f"pool_{f}" for f in PoolSettings.model_fields} <= set(labels)
    assert {f"cache_{f}" for f in CacheSettings.model_fields} <= set(labels)
    upstream = set(ElevenLabsSettings.model_fields) - {"api_key", "base_url"}
    assert {f"elevenlabs_{f}" for f in upstream} <= set(labels)
    assert not {"elevenlabs_api_key", "elevenlabs_base_url", "database_url"} & set(labels)
    assert labels["pool_max_size"] == "7" and labels["pool_acquire_timeout_s"] == "5.0"
    assert labels["kpi_debounce_s"] == "0.2" and labels["chart_timeout_s"] == "1.5"
    for name in ("workers", "kpi_max_delay_s", "gzip_minimum_size", "gzip_level",
                 "config_fresh_s", "elevenlabs_enabled", "elevenlabs_page_budget_s",
                 "elevenlabs_request_deadline_s", "elevenlabs_max_retries",
                 "elevenlabs_max_concurrency"):
        assert name in labels, name


async def test_an_environment_override_shows(shared_dbs, monkeypatch):
    monkeypatch.setenv("TARGET_TOGGLES__PARALLEL_CHARTS", "false")
    monkeypatch.setenv("TARGET_CACHE__OVERVIEW_TTL_S", "42")
    labels, _, _ = await scrape(shared_dbs["optimized"])
    assert labels["toggle_parallel_charts"] == "false"
    assert labels["toggle_kpi_view"] == "true"  # the rest of the profile is untouched
    assert labels["cache_overview_ttl_s"] == "42.0"


async def test_an_override_on_top_of_the_naive_profile_shows_alone(shared_dbs, monkeypatch):
    monkeypatch.setenv("TARGET_TOGGLES__KPI_VIEW", "true")
    labels, _, _ = await scrape(shared_dbs["naive"], "naive")
    toggles = {k: v for k, v in labels.items() if k.startswith("toggle_")}
    assert toggles == {f"toggle_{n}": "true" if n == "kpi_view" else "false"
                       for n in Toggles.model_fields}
    # the upstream block is the one in force: the naive profile's toggles applied
    assert labels["elevenlabs_parallel"] == "false" and labels["elevenlabs_retries"] == "false"


def with_password(dsn: str, password: str) -> tuple[str, str]:
    """`dsn` carrying `password` (accepted by a trust-auth server), or its own password."""
    parts = urlsplit(dsn)
    if parts.password:
        return dsn, parts.password
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{parts.username or 'postgres'}:{password}@{host}"
    return urlunsplit(parts._replace(netloc=netloc)), password


async def test_no_secret_or_url_is_ever_on_metrics(shared_dbs):
    dsn, password = with_password(shared_dbs["optimized"], PASSWORD)
    labels, text, settings = await scrape(
        dsn, elevenlabs={"api_key": API_KEY, "base_url": UPSTREAM})
    assert settings.elevenlabs.api_key.get_secret_value() == API_KEY  # really configured
    assert settings.elevenlabs_enabled and labels["elevenlabs_enabled"] == "true"
    for secret in (API_KEY, password, dsn, UPSTREAM, "elevenlabs-secret-host",
                   urlsplit(dsn).netloc):
        assert secret not in text, secret
    assert not any("://" in value for value in labels.values())


def test_a_secret_added_later_is_left_out_by_type_and_by_name():
    from pydantic import SecretStr

    class Later(Settings):
        webhook_signing: SecretStr = SecretStr("whsec-LATER")
        sentry_dsn: str = "plain-but-named-dsn"
        audit_token: str = "plain-but-named-token"
        callback_address: str = "https://hooks.example.invalid/x"

    labels = effective_settings(Later(database_url=f"postgresql://u:{PASSWORD}@h/db"))
    rendered = repr(labels)
    for leaked in ("whsec-LATER", "plain-but-named", "hooks.example", PASSWORD):
        assert leaked not in rendered, leaked
    assert labels["toggle_auth_cache"] == "true"  # a boolean named "auth" is harmless


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape_two_workers(dsn: str, tmp_path: Path) -> str:
    """`/metrics` of the service run with two uvicorn workers, once both have published."""
    port, metrics_dir = free_port(), tmp_path / "prom"
    metrics_dir.mkdir()
    env = {**os.environ, "TARGET_DATABASE_URL": dsn, "TARGET_PORT": str(port),
           "TARGET_WORKERS": "2", "TARGET_ELEVENLABS_ENABLED": "false",
           "TARGET_TOGGLES__PARALLEL_CHARTS": "false",
           "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    log = (tmp_path / "service.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "target_service"], env=env,
                            stdout=log, stderr=subprocess.STDOUT,
                            cwd=Path(__file__).resolve().parents[2])
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:  # both workers have published once both wrote their gauge file
            assert proc.poll() is None, (tmp_path / "service.log").read_text()
            try:
                ready = httpx.get(f"{url}/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                ready = False
            if ready and len(list(metrics_dir.glob("gauge_max_*.db"))) >= 2:
                break
            assert time.monotonic() < deadline, (tmp_path / "service.log").read_text()
            time.sleep(0.1)
        text = httpx.get(f"{url}/metrics", timeout=5).text
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
    return text


async def test_two_uvicorn_workers_show_one_series(fresh_db, tmp_path):
    """Multiprocess mode: both workers publish, the scrape merges them into one series."""
    dsn = await fresh_db("optimized")
    text = await asyncio.to_thread(scrape_two_workers, dsn, tmp_path)
    lines = [line for line in text.splitlines() if line.startswith(NAME)]
    assert len(lines) == 1 and lines[0].startswith(NAME + "{"), lines
    labels = settings_labels(text)
    assert "pid" not in labels
    assert labels["workers"] == "2" and labels["toggle_parallel_charts"] == "false"
    assert labels["profile"] == "optimized"
    assert dsn not in text


def test_the_exposed_name_in_single_process_mode():
    from prometheus_client import CollectorRegistry

    from target_service.app import create_app

    app = create_app(Settings(), CollectorRegistry())
    text = app.state.metrics.render()[0].decode()
    lines = [line for line in text.splitlines() if line.startswith(NAME)]
    assert len(lines) == 1 and lines[0].startswith(NAME + "{") and lines[0].endswith(" 1.0")
    assert f"# TYPE {NAME} gauge" in text
