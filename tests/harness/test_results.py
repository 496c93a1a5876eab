"""result.json: the committed JSON Schema matches the models; loading is strict; v1 still reads."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from harness import hdr
from harness.errors import ConfigError
from harness.model import intervals
from harness.model import result as results
from harness.model.latency import Latency
from tests.builders import EndpointSpec, LogNormal, build_run

V1 = Path(__file__).resolve().parents[1] / "fixtures" / "result_v1.json"
OVERVIEW = "GET /api/v1/dashboard/overview"


def test_committed_schema_is_generated_from_the_models():
    committed = json.loads(results.SCHEMA_PATH.read_text())
    assert committed == results.json_schema(), (
        "regenerate: python -m harness.model.result > harness/model/result.schema.json")


@pytest.fixture(scope="module")
def built():
    return build_run({OVERVIEW: EndpointSpec(rps=8, latency_ms=LogNormal(25, 0.3),
                                             failures={"http_500": 0.125}),
                      "GET /api/v1/agents": EndpointSpec(rps=2)},
                     seconds=8, warmup_s=2, seed=4, failed_scrapes=(4,))


def test_a_built_v2_result_validates_and_round_trips(tmp_path: Path, built):
    run_dir = built.write(tmp_path / "run")
    raw = json.loads((run_dir / "result.json").read_text())
    assert raw["schema_version"] == 2
    jsonschema.validate(raw, results.json_schema())
    loaded = results.load(run_dir / "result.json")
    assert loaded == built.result
    assert loaded.endpoints[OVERVIEW].count == 64 and loaded.endpoints[OVERVIEW].failures == {
        "http_500": 8}
    assert [f.t for f in loaded.server.failed_scrapes] == [built.client.started_at + 4]
    assert loaded.run.machine.logical_cpus == 4 and loaded.run.target.profile == "optimized"
    # the interval log beside it reads back to the same windows
    log = intervals.load(run_dir / loaded.windows.interval_log)
    assert log.entries == built.log.entries
    assert hdr.encode(log.merged(OVERVIEW, built.seconds())) == loaded.endpoints[OVERVIEW].histogram


def test_the_committed_schema_validates_a_built_result(built):
    raw = json.loads(built.result.model_dump_json())
    jsonschema.validate(raw, json.loads(results.SCHEMA_PATH.read_text()))
    raw["windows"]["seconds"][0]["phase"] = "measure"  # v1's name for the phase
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(raw, results.json_schema())


def test_a_v1_result_loads_without_windows():
    raw = json.loads(V1.read_text())
    assert raw["schema_version"] == 1
    r = results.load(V1)
    assert r.schema_version == 2 and r.windows is None
    assert r.run.run_id == "20261201T212115Z-mixed-optimized-7185"
    assert r.run.target is None and r.run.machine is None
    assert set(r.endpoints) == set(raw["endpoints"]) == {
        "GET /api/v1/activity", "GET /api/v1/agents", "GET /api/v1/agents/{agent_id}",
        "GET /api/v1/dashboard/analytics", "GET /api/v1/dashboard/overview"}
    for key, want in raw["endpoints"].items():
        got = r.endpoints[key].model_dump()
        assert {k: got[k] for k in want} == want, key
    got_totals = r.totals.model_dump()
    assert {k: got_totals[k] for k in raw["totals"]} == raw["totals"]
    assert r.totals.count == 9 and r.totals.throughput_rps == 2.016
    assert hdr.decode(r.totals.histogram).get_total_count() == 9
    assert r.agreement.model_dump() == raw["agreement"] | {"edge_users": None}  # not recorded
    assert r.server.series == [] and r.server.failed_scrapes == []


def test_a_v1_result_saved_again_is_v2_and_reads_back(tmp_path: Path):
    r = results.load(V1)
    path = tmp_path / "result.json"
    results.save(r, path)
    raw = json.loads(path.read_text())
    assert raw["schema_version"] == 2 and raw["windows"] is None
    jsonschema.validate(raw, results.json_schema())
    assert results.load(path) == r


def test_v1_events_are_typed_on_the_way_in(tmp_path: Path):
    raw = json.loads(V1.read_text())
    raw["events"] = [{"t": 5.0, "name": "fault:outage", "ok": False, "error": "stub down",
                      "extra": 1}, {"name": "phase:measured"}, "garbage"]
    path = tmp_path / "result.json"
    path.write_text(json.dumps(raw))
    events = results.load(path).events
    assert [(e.t, e.name, e.ok, e.error) for e in events] == [
        (5.0, "fault:outage", False, "stub down"), (0.0, "phase:measured", True, None)]


def test_a_truncated_result_is_a_config_error(tmp_path: Path, built):
    path = tmp_path / "result.json"
    text = built.result.model_dump_json(indent=2)
    path.write_text(text[: len(text) // 2])
    with pytest.raises(ConfigError, match="is not valid JSON"):
        results.load(path)


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    ('{"schema_version": 99}', "unsupported schema_version 99"),
    ("[1, 2]", "unsupported schema_version None"),
    ('{"run": {}}', "unsupported schema_version None"),
    ('{"schema_version": 1, "run": {}}', "invalid result at run"),
    ('{"schema_version": 2, "run": {}}', "invalid result at run"),
])
def test_bad_result_files_are_config_errors(tmp_path: Path, content: str, message: str):
    path = tmp_path / "result.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        results.load(path)
    with pytest.raises(ConfigError, match="no result"):
        results.load(tmp_path / "missing.json")


def test_a_v2_result_with_an_unknown_field_is_refused(tmp_path: Path, built):
    raw = json.loads(built.result.model_dump_json())
    raw["endpoints"][OVERVIEW]["p95"] = 1.0
    path = tmp_path / "result.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(ConfigError, match=r"invalid result at endpoints\.GET /api/v1/dashboard"):
        results.load(path)


def test_latency_of_is_the_one_histogram_to_percentiles_mapping():
    h = hdr.new_histogram()
    for v in (1000, 2000, 3000, 50_000):
        hdr.record(h, v)
    lat = Latency.of(h)
    assert lat == Latency.of(hdr.encode(h))
    assert (lat.count, lat.min, lat.max) == (4, 1.0, pytest.approx(50.0, rel=1e-3))
    assert lat.p50 == pytest.approx(2.0, rel=1e-3) and lat.p999 == lat.max
    assert Latency.of(None) == Latency.of("") == Latency(count=0)
    assert Latency.of(hdr.new_histogram()).p95 is None
