"""The run's teardown: the target's span spool becomes `spans.jsonl` (harness.run.spans)."""

from __future__ import annotations

import json
import pickle

from harness.run import layout
from harness.run import spans as run_spans
from target_service.span_spool import FORMAT, encode_batch
from tests.target_service.test_span_spool import frame, made_spans


def test_the_run_teardown_turns_the_spool_into_spans_jsonl_and_removes_it(tmp_path):
    layout.spans_spool(tmp_path).write_bytes(encode_batch(made_spans()))
    phases: list[str] = []
    assert run_spans.write_jsonl(tmp_path, phases.append) is None
    assert not layout.spans_spool(tmp_path).exists()
    assert json.loads(layout.spans_jsonl(tmp_path).read_text())["resourceSpans"]
    assert phases == ["writing spans.jsonl"]
    assert run_spans.write_jsonl(tmp_path) is None  # no spool: nothing to do


def test_a_spool_with_a_damaged_frame_is_kept_beside_the_lines_of_the_others(tmp_path):
    good = encode_batch(made_spans())
    spool = layout.spans_spool(tmp_path)
    spool.write_bytes(good + good[:-5] + good)
    note = run_spans.write_jsonl(tmp_path)
    assert note is not None and "1 damaged frame(s)" in note and "the spool is kept" in note
    assert spool.exists()
    assert len(layout.spans_jsonl(tmp_path).read_text().splitlines()) == 2


def test_a_spool_that_cannot_be_read_is_kept_and_noted_with_no_partial_lines(tmp_path):
    body = pickle.dumps((FORMAT + 1, {}, []))
    spool = layout.spans_spool(tmp_path)
    spool.write_bytes(encode_batch(made_spans()) + frame(body))
    note = run_spans.write_jsonl(tmp_path)
    assert note is not None and "spans.spool could not be turned into spans.jsonl" in note
    assert spool.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spans.spool"]


def test_collecting_a_run_whose_teardown_never_converted_its_spool_converts_it(tmp_path):
    """A harness killed before its teardown leaves the spool: the record is built from it."""
    from harness.run import record
    from tests.builders import EndpointSpec, build_run

    built = build_run({"GET /api/v1/dashboard/overview": EndpointSpec(rps=5)}, seconds=5)
    info = built.result.run.model_copy(update={"trace_sampling": 1.0})
    layout.spans_spool(tmp_path).write_bytes(encode_batch(made_spans()))
    notes: list[str] = []
    summary = record.traces(tmp_path, info, built.client, notes)
    assert summary is not None and summary.spans == len(made_spans())
    assert notes == []
    assert layout.spans_jsonl(tmp_path).exists() and not layout.spans_spool(tmp_path).exists()
