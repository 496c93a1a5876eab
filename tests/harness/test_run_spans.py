"""The run's teardown: the target's span spool becomes `spans.jsonl` (harness.run.spans)."""

from __future__ import annotations

import json
import struct

from harness.run import layout
from harness.run import spans as run_spans
from target_service.span_spool import encode_batch
from tests.target_service.test_span_spool import made_spans


def test_the_run_teardown_turns_the_spool_into_spans_jsonl_and_removes_it(tmp_path):
    layout.spans_spool(tmp_path).write_bytes(encode_batch(made_spans()))
    phases: list[str] = []
    assert run_spans.write_jsonl(tmp_path, phases.append) is None
    assert not layout.spans_spool(tmp_path).exists()
    assert json.loads(layout.spans_jsonl(tmp_path).read_text())["resourceSpans"]
    assert phases == ["writing spans.jsonl"]
    assert run_spans.write_jsonl(tmp_path) is None  # no spool: nothing to do


def test_a_spool_that_cannot_be_read_is_kept_and_noted(tmp_path):
    body = b"garbage!"
    spool = layout.spans_spool(tmp_path)
    spool.write_bytes(encode_batch(made_spans()) + struct.pack("<I", len(body)) + body)
    note = run_spans.write_jsonl(tmp_path)
    assert note is not None and "spans.spool could not be turned into spans.jsonl" in note
    assert spool.exists()
    assert len(layout.spans_jsonl(tmp_path).read_text().splitlines()) == 1  # what was read
