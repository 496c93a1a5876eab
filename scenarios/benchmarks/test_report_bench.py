"""`harness report` on a run of 1,000,000 requests: under 2 s (issue 11).

The run is built with the test builders (`tests/builders.py`, through the production
assembly): six endpoints at 1,200 / 800 / 600 / 400 / 200 / 133 requests/s for 300
measured seconds after a 10 s warm-up (999,900 measured requests, 1,032,900 in all), with
the service's query, pool and ElevenLabs histograms in every scrape. Its baseline is a
copy of it, already gated (`gate.json` in the run, as `harness run --baseline` leaves
it). Timed, as `write_report` does it: reading both records and interval logs and
the gate, every section (per-second percentiles of every endpoint of both runs,
percentile curves, the shift function's block bootstrap, the server's series), the
embedded data (both interval logs, gzip + base64) and the page written.

    .venv/bin/pytest scenarios/benchmarks/test_report_bench.py

Building the run takes ~25 s (a million requests recorded one by one), once.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness import baselines
from harness.model import policy as pol
from harness.outputs.report import write_report
from harness.run import gate
from tests.builders import EndpointSpec, HistogramSpec, LogNormal, build_run

RATES = (1200, 800, 600, 400, 200, 133)
SECONDS = 300


@pytest.fixture(scope="module")
def million(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("report-bench")
    endpoints = {f"GET /api/v1/bench/e{i}": EndpointSpec(rps=r, latency_ms=LogNormal(20 + 5 * i))
                 for i, r in enumerate(RATES)}
    histograms = {("db_query_duration_seconds", "q"): HistogramSpec(rate=100),
                  ("db_pool_acquire_seconds", ""): HistogramSpec(rate=100,
                                                                latency_ms=LogNormal(0.3)),
                  ("elevenlabs_upstream_request_duration_seconds", "ok"): HistogramSpec(rate=20)}
    built = build_run(endpoints, seconds=SECONDS, seed=11, run_id="bench-1m", users=200,
                      server_histograms=histograms)
    assert built.result.totals.count == sum(r * SECONDS for r in RATES)
    run = built.write(root / "run")
    base = Path(shutil.copytree(run, root / "baseline"))
    judged = gate.judge(gate.read_runs([run]), baselines.load(base), pol.Policy())
    gate.write(judged, run)
    return run, base


def test_report_of_a_million_requests_against_its_baseline(benchmark, million, tmp_path):
    run, base = million
    out = tmp_path / "report.html"
    page = benchmark.pedantic(write_report, args=(run,), kwargs={"baseline": base, "out": out},
                              rounds=5, warmup_rounds=1)
    size = page.stat().st_size
    benchmark.extra_info["bytes"] = size
    print(f"\nreport of {sum(RATES) * SECONDS:,} requests against its baseline: "
          f"median {benchmark.stats.stats.median:.2f} s, {size / 1e6:.2f} MB")
    assert benchmark.stats.stats.median < 2.0


def test_report_of_a_million_requests_alone(benchmark, million, tmp_path):
    run, _ = million
    lone = Path(shutil.copytree(run, tmp_path / "alone"))
    (lone / "gate.json").unlink()
    page = benchmark.pedantic(write_report, args=(lone,), rounds=5, warmup_rounds=1)
    size = page.stat().st_size
    benchmark.extra_info["bytes"] = size
    print(f"\nreport of {sum(RATES) * SECONDS:,} requests, no baseline: "
          f"median {benchmark.stats.stats.median:.2f} s, {size / 1e6:.2f} MB")
    assert benchmark.stats.stats.median < 2.0
