"""`ablate.json`'s JSON Schema: the committed file is generated from the models, real
records (planned, and analysed over run directories built with known truth) validate
against it, and broken ones do not - as for `result.json` and `gate.json`."""

from __future__ import annotations

import json

import jsonschema
import pytest
from pydantic import ValidationError

from harness.model import ablation as ablations
from harness.model.ablation import AblationRecord
from harness.run import ablate
from harness.run.config import RunConfig
from tests.harness.test_ablate import built

REGENERATE = "python -m harness.model.ablation > harness/model/ablation.schema.json"


def committed() -> dict:
    return json.loads(ablations.SCHEMA_PATH.read_text())


@pytest.fixture(scope="module")
def job(tmp_path_factory) -> tuple[dict, dict]:
    """(the planned ablate.json, the analysed one) of a one-round job: all on, one toggle
    off (slower) and all off (much slower), every run built."""
    out = tmp_path_factory.mktemp("ablate") / "reports"
    job, record = ablate.new_job(out, RunConfig(), ablate.configurations(["response_cache"]),
                                 1, "harness ablate --toggles response_cache --rounds 1")
    planned = json.loads((job / ablations.ABLATE_FILE).read_text())
    truth = {"all on": 20.0, "response_cache off": 30.0, "all off": 60.0}
    for n, r in enumerate(record.runs):
        r.run_id = built(out / "runs", f"run{n}", n, truth[r.config])
        r.status = "complete"
    ablate.analyse(record, out / "runs", job, resamples=200)
    return planned, json.loads((job / ablations.ABLATE_FILE).read_text())


def test_committed_ablation_schema_is_generated_from_the_models():
    assert committed() == ablations.json_schema(), f"regenerate: {REGENERATE}"


def test_the_schema_is_a_versioned_draft_2020_12_document():
    schema = committed()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith("/harness/ablation.schema.json")
    assert schema["properties"]["schema_version"]["const"] == ablations.ABLATION_SCHEMA_VERSION
    assert {"schema_version", "kind", "configurations", "runs"} <= set(schema["required"])
    jsonschema.Draft202012Validator.check_schema(schema)
    # like the siblings: no field the models do not know, at any level
    assert schema["additionalProperties"] is False
    assert all(d["additionalProperties"] is False for d in schema["$defs"].values()
               if d.get("type") == "object")


def test_a_planned_and_an_analysed_record_validate(job):
    planned, analysed = job
    schema = committed()
    jsonschema.validate(planned, schema)
    jsonschema.validate(analysed, schema)
    assert analysed["schema_version"] == 1 and analysed["kind"] == "ablation"
    assert {e["config"] for e in analysed["effects"]} == {"response_cache off", "all off"}
    assert {e["metric"] for e in analysed["effects"]} >= {"p95", "throughput"}
    assert AblationRecord.model_validate(analysed).model_dump(mode="json") == analysed


def _without(raw: dict, key: str) -> dict:
    return {k: v for k, v in raw.items() if k != key}


def _broken(raw: dict) -> dict[str, dict]:
    effect = raw["effects"][0]
    return {
        "missing configurations": _without(raw, "configurations"),
        "missing created_at": _without(raw, "created_at"),
        "missing schema_version": _without(raw, "schema_version"),
        "version 2": {**raw, "schema_version": 2},
        "version as text": {**raw, "schema_version": "1"},
        "another kind": {**raw, "kind": "ab"},
        "a field it does not know": {**raw, "surprise": 1},
        "an effect without its change": {**raw, "effects": [_without(effect, "change")]},
        "an unknown metric": {**raw, "effects": [{**effect, "metric": "p42"}]},
        "an unknown scale": {**raw, "effects": [{**effect, "scale": "log"}]},
        "a run of an unknown status": {**raw, "runs": [{**raw["runs"][0], "status": "done"}]},
    }


@pytest.mark.parametrize("how", list(_broken({"effects": [{}], "runs": [{}]})))
def test_a_broken_record_does_not_validate(job, how):
    broken = _broken(job[1])[how]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, committed())


@pytest.mark.parametrize("how", [h for h in _broken({"effects": [{}], "runs": [{}]})
                                 if h != "missing schema_version"])
def test_the_model_refuses_what_the_schema_refuses(job, how):
    """Both ways but one: the model fills in a missing schema_version (it builds records),
    the schema insists on it (a file must say what it is)."""
    with pytest.raises(ValidationError):
        AblationRecord.model_validate(_broken(job[1])[how])
