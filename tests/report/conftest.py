"""Run directories for the report's tests, built with `tests.builders` (no Locust).

Every run directory gets a `dataset.json` like the real manifest, with API keys the
report must never show, so every rendering test can check for them.
"""

from __future__ import annotations

import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.builders import Burst, EndpointSpec, HistogramSpec, LogNormal, build_run

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
API_KEYS = ("hk_test_9f2c1b7e4d6a8c0e", "hk_test_1a2b3c4d5e6f7a8b")
ENDPOINTS = {
    "GET /api/v1/dashboard/overview": EndpointSpec(rps=20, latency_ms=LogNormal(30)),
    "GET /api/v1/agents": EndpointSpec(rps=6, latency_ms=LogNormal(45),
                                       failures={"http_503": 0.02}),
    "POST /api/v1/calls": EndpointSpec(rps=0),
}
SERVER_HISTOGRAMS = {
    ("db_query_duration_seconds", "overview_kpis"): HistogramSpec(rate=15,
                                                                  latency_ms=LogNormal(4)),
    ("db_pool_acquire_seconds", ""): HistogramSpec(rate=20, latency_ms=LogNormal(0.3)),
    ("elevenlabs_upstream_request_duration_seconds", "ok"): HistogramSpec(
        rate=5, latency_ms=LogNormal(80)),
}
SECTION_IDS = ["verdict", "facts", "endpoints", "latency", "distribution", "throughput",
               "caches", "elevenlabs", "database", "traces", "correctness", "gate"]


def write_manifest(run_dir: Path) -> None:
    users = [{"user_id": n + 1, "api_key": key, "agent_ids": [n + 1], "weight": 0.5}
             for n, key in enumerate(API_KEYS)]
    (run_dir / "dataset.json").write_text(json.dumps({"preset": "small", "users": users}))


def make_run(directory: Path, endpoints: dict | None = None, seed: int = 1,
             run_id: str | None = None, **kwargs) -> Path:
    built = build_run(endpoints or ENDPOINTS, seed=seed, run_id=run_id or f"run-{seed}",
                      server_histograms=SERVER_HISTOGRAMS, **kwargs)
    built.write(directory)
    write_manifest(directory)
    return directory


@pytest.fixture(scope="session")
def runs(tmp_path_factory) -> dict[str, Path]:
    """A baseline and a current run (overview slower, with a burst), built once."""
    root = tmp_path_factory.mktemp("report-runs")
    slower = dict(ENDPOINTS)
    slower["GET /api/v1/dashboard/overview"] = EndpointSpec(
        rps=20, latency_ms=LogNormal(40), bursts=(Burst(20, 5, 3.0),))
    return {"baseline": make_run(root / "baseline", seed=1, run_id="base-1"),
            "current": make_run(root / "current", slower, seed=2, run_id="cur-1")}


@pytest.fixture
def run_copy(runs, tmp_path) -> Path:
    """A private copy of the current run (tests that write into it)."""
    return Path(shutil.copytree(runs["current"], tmp_path / "current"))


class Outline(HTMLParser):
    """What a page holds: its sections in order, tables, chart placeholders, scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.tables = 0
        self.charts: list[str] = []
        self.scripts: list[dict[str, str | None]] = []
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "section" and a.get("id"):
            self.sections.append(a["id"])
        elif tag == "table":
            self.tables += 1
        elif tag == "div" and a.get("data-chart"):
            self.charts.append(a["data-chart"])
        elif tag == "script":
            self.scripts.append(a)
        if tag in ("script", "img", "iframe") and a.get("src"):
            self.external.append(a["src"])
        if tag == "link" and a.get("href"):
            self.external.append(a["href"])


def outline(html: str) -> Outline:
    parser = Outline()
    parser.feed(html)
    parser.close()
    return parser


COMPARE_SECTION_IDS = ["verdict", "gate", "rounds", "facts", "endpoints", "latency",
                       "distribution", "throughput", "caches", "elevenlabs", "database",
                       "traces", "correctness"]
SLOWER = dict(ENDPOINTS, **{"GET /api/v1/dashboard/overview": EndpointSpec(
    rps=20, latency_ms=LogNormal(40))})


def make_ab_job(out: Path, rounds: int = 2, job_id: str = "20270115T080000Z-ab12",
                judge: bool = True) -> Path:
    """A `harness ab` job as the command leaves it: `out/runs/<id>` for every run (B's
    overview slower), `out/ab/<id>/ab.json` and, when `judge`, the paired gate's
    `gate.json` and each round's changes (through `harness.run.ab.judge`)."""
    from harness.model import policy as pol
    from harness.model.ab import AbRecord, AbRun
    from harness.run import ab

    job = out / "ab" / job_id
    runs = []
    for n, (r, side) in enumerate(ab.order(rounds)):
        run_id = f"{side.lower()}{r}"
        make_run(out / "runs" / run_id, SLOWER if side == "B" else ENDPOINTS,
                 seed=100 + n, run_id=run_id)
        runs.append(AbRun(round=r, side=side, run_id=run_id, status="complete"))
    record = AbRecord(a="profile:optimized", b="toggles:response_cache=false",
                      rounds=rounds, runs=runs, created_at="2027-01-15T08:00:00+00:00")
    ab.save(record, job)
    if judge:
        ab.judge(record, out / "runs", job, pol.Policy(), False)
    return job


@pytest.fixture(scope="session")
def ab_job(tmp_path_factory) -> Path:
    """A judged two-round ab job (reports/ab/<id>), built once."""
    return make_ab_job(tmp_path_factory.mktemp("ab-job") / "reports")
