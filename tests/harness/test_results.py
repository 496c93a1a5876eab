"""result.json: the committed JSON Schema matches the models; loading is strict."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from harness.analysis import collect, server_metrics
from harness.model import result as results
from harness.errors import ConfigError


def test_committed_schema_is_generated_from_the_models():
    committed = json.loads(results.SCHEMA_PATH.read_text())
    assert committed == results.json_schema(), (
        "regenerate: python -m harness.model.result > harness/model/result.schema.json")


def sample_info(**overrides) -> results.RunInfo:
    values = dict(run_id="r1", status="complete", scenario="mixed", shape="steady",
                  profile="optimized", users=2, spawn_rate=1.0, duration_s=5, warmup_s=1,
                  workers=1, target_workers=1, faults="healthy",
                  dataset=results.DatasetInfo(preset="tiny", seed=1, generator_version=1,
                                              anchor_date="2026-11-29"),
                  database="embedded", git_commit=None, git_dirty=None, harness_version="0",
                  python="3.11", platform="linux", cpu_count=2,
                  started_at="2026-11-29T00:00:00+00:00", measure_from=None,
                  ended_at="2026-11-29T00:00:10+00:00")
    return results.RunInfo(**(values | overrides))


def test_a_built_result_validates_and_round_trips(tmp_path: Path):
    from harness import hdr

    h = hdr.new_histogram()
    for v in (1000, 2000, 3000, 50_000):
        hdr.record(h, v)
    client = {"measure_from": 100.0, "ended_at": 110.0,
              "endpoints": {"GET /api/v1/agents": {"count": 4, "failures": {"http_500": 1},
                                                   "histogram": hdr.encode(h),
                                                   "corrected_histogram": hdr.encode(h)}}}
    result = collect.build(sample_info(), client, None)
    assert result.endpoints["GET /api/v1/agents"].latency_ms.p50 == pytest.approx(2.0, rel=0.01)
    assert result.totals.count == 4 and result.totals.failure_rate == 0.25
    path = tmp_path / "result.json"
    results.save(result, path)
    jsonschema.validate(json.loads(path.read_text()), results.json_schema())
    assert results.load(path) == result


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    ('{"schema_version": 99}', "unsupported schema_version"),
    ('{"schema_version": 1, "run": {}}', "invalid result"),
])
def test_bad_result_files_are_config_errors(tmp_path: Path, content: str, message: str):
    path = tmp_path / "result.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        results.load(path)
    with pytest.raises(ConfigError, match="no result"):
        results.load(tmp_path / "missing.json")


def test_prometheus_histogram_quantile_interpolates_like_promql():
    text = "\n".join([
        "# TYPE x histogram",
        'x_bucket{le="0.1"} 50', 'x_bucket{le="0.2"} 90', 'x_bucket{le="0.4"} 100',
        'x_bucket{le="+Inf"} 100', "x_count 100", "x_sum 10", ""])
    samples = server_metrics.parse(text)
    assert server_metrics.histogram_quantile(samples, "x", 0.5) == pytest.approx(0.1)
    assert server_metrics.histogram_quantile(samples, "x", 0.95) == pytest.approx(0.3)
    empty = server_metrics.delta(samples, samples)
    assert server_metrics.histogram_quantile(empty, "x", 0.5) is None


def test_window_delta_is_reset_aware():
    before = server_metrics.parse('# TYPE c counter\nc_total{a="1"} 10\n')
    after = server_metrics.parse('# TYPE c counter\nc_total{a="1"} 3\n')
    assert server_metrics.total(server_metrics.delta(before, after), "c_total") == 3
