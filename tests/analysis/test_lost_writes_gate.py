"""A lost write fails the gate hard, whatever the statistics and the baseline (built runs)."""

from __future__ import annotations

from harness.analysis.checks import RunData
from harness.analysis.compare import compare, hard_failures
from harness.model.chaos import WriteCheck
from tests.analysis.test_compare import run, settings
from tests.builders import EndpointSpec, build_run

OVERVIEW = "GET /api/v1/dashboard/overview"

CLEAN = WriteCheck(acknowledged=120, found=120, lost=0, duplicates=0)
LOST = WriteCheck(acknowledged=120, found=117, lost=3, duplicates=0, lost_ids=[40, 41, 97])


def with_writes(data: RunData, writes: WriteCheck | None) -> RunData:
    return RunData(data.result.model_copy(update={"writes": writes}), data.log)


def test_every_acknowledged_write_found_changes_nothing():
    plain = compare([run(1)], [run(2)], settings())
    gate = compare([run(1)], [with_writes(run(2), CLEAN)], settings())
    assert gate.hard_failures == [] and gate.cannot_judge == []
    assert (gate.verdict, gate.exit_code) == (plain.verdict, plain.exit_code)
    assert gate.exit_code == 0


def test_one_lost_write_is_a_hard_failure_naming_the_ids():
    gate = compare([run(1)], [with_writes(run(2), LOST)], settings())
    assert [h.kind for h in gate.hard_failures] == ["lost_writes"]
    detail = gate.hard_failures[0].detail
    assert "3 of 120 acknowledged write(s) missing" in detail
    assert "call ids 40, 41, 97" in detail and "..." not in detail
    assert gate.verdict == "regressed" and gate.exit_code == 1
    assert "missing from the database" in gate.summary


def test_more_lost_than_named_says_there_are_more():
    many = WriteCheck(acknowledged=500, found=450, lost=50, duplicates=0,
                      lost_ids=list(range(1, 21)))
    (failure,) = hard_failures([with_writes(run(2), many).result], settings())
    assert failure.kind == "lost_writes" and failure.detail.endswith("20, ...)")


def test_the_baseline_s_writes_do_not_matter():
    """A baseline that lost writes neither excuses nor fails a clean current run, and a
    clean baseline does not excuse a current run that lost one."""
    clean_now = compare([with_writes(run(1), LOST)], [with_writes(run(2), CLEAN)], settings())
    assert clean_now.hard_failures == [] and clean_now.exit_code == 0
    lost_now = compare([with_writes(run(1), CLEAN)], [with_writes(run(2), LOST)], settings())
    assert lost_now.verdict == "regressed" and lost_now.exit_code == 1


def test_a_much_faster_run_that_lost_a_write_still_fails():
    gate = compare([run(1, overview_ms=40.0)], [with_writes(run(2), LOST)], settings())
    assert any(c.verdict == "improved" for c in gate.checks)
    assert gate.verdict == "regressed" and gate.exit_code == 1


def test_a_lost_write_fails_even_a_run_that_cannot_otherwise_be_judged():
    gate = compare([run(1)], [with_writes(run(2, saturated=True), LOST)], settings())
    assert gate.cannot_judge and [h.kind for h in gate.hard_failures] == ["lost_writes"]
    assert gate.verdict == "regressed" and gate.exit_code == 1


def test_writes_that_could_not_be_checked_cannot_be_judged_clean():
    unchecked = WriteCheck(acknowledged=120, found=0, lost=0, duplicates=0, checked=False,
                           error="cannot read the calls of postgresql://h/x: refused")
    gate = compare([run(1)], [with_writes(run(2), unchecked)], settings())
    assert gate.hard_failures == []
    assert gate.verdict == "cannot_judge" and gate.exit_code == 3
    assert "acknowledged writes not checked" in gate.cannot_judge[0]
    assert "refused" in gate.cannot_judge[0]


def test_a_run_that_wrote_nothing_has_no_write_check():
    gate = compare([run(1)], [with_writes(run(2), None)], settings())
    assert gate.hard_failures == [] and gate.cannot_judge == []


def test_the_summary_says_what_the_write_check_found():
    from harness.outputs.markdown import summary_markdown

    built = build_run({OVERVIEW: EndpointSpec(rps=5)}, seconds=8, warmup_s=2)
    assert "Acknowledged writes" not in summary_markdown(built.result)
    built.result.writes = WriteCheck(acknowledged=50, found=49, lost=1, duplicates=0)
    assert "Acknowledged writes: 50, found 49, **lost 1**" in summary_markdown(built.result)
    built.result.writes = WriteCheck(acknowledged=50, found=0, lost=0, duplicates=0,
                                     checked=False, error="database unreachable")
    assert "**not checked**: database unreachable" in summary_markdown(built.result)
