"""The compare page from built runs and a built `harness ab` job: every section in its
order (the verdicts first), both sides named and present, the paired verdicts and the
round-by-round changes of a job, the weaker verdict of one run a side said, the sample
messages of failures, and every bad input refused before anything is written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.errors import ConfigError, UsageError
from harness.model import result as results
from harness.outputs.report import load_inputs, render_report
from harness.outputs.report.compare_page import render_compare
from harness.outputs.report.comparison import load_compare, write_compare
from tests.builders import EndpointSpec, LogNormal
from tests.report.conftest import (
    COMPARE_SECTION_IDS,
    FIXTURES,
    SECTION_IDS,
    make_ab_job,
    make_run,
    outline,
)
from tests.report.test_render import assert_no_keys, payload, section

OVERVIEW = "GET /api/v1/dashboard/overview"


def test_two_runs_side_by_side_verdicts_first(runs):
    html = render_compare(load_compare([str(runs["baseline"]), str(runs["current"])]))
    page = outline(html)
    assert page.sections == COMPARE_SECTION_IDS
    assert page.external == []
    data = payload(html)
    assert set(page.charts) == set(data["charts"])
    assert data["baseline"][0]["record"]["run"]["run_id"] == "base-1"  # A
    assert data["current"]["record"]["run"]["run_id"] == "cur-1"  # B
    assert data["comparison"]["paired"] is False
    header = html[html.index('<header class="top">'):html.index("</header>")]
    assert "A: base-1" in header and "B: cur-1" in header and "commit 000000000000" in header
    banner = section(html, "verdict")
    assert "state-none" not in banner and "one run a side" in banner
    assert "weaker than a paired harness ab job" in banner
    gate = section(html, "gate")
    assert f"p95 {OVERVIEW}" in gate and "B against A" in gate
    assert "not paired by round" in section(html, "rounds")
    facts = section(html, "facts")  # A's column first
    assert facts.index("A: base-1") < facts.index("B: cur-1")
    latency = section(html, "latency")
    assert "dashed grey" in latency
    series = [s["label"] for c in data["charts"].values() for s in c["series"]]
    assert {"B p95", "A p50", "A p95", "B all", "A all"} <= set(series)
    assert "B p95 (ms)" in section(html, "endpoints") and "A →" in section(html, "endpoints")
    assert_no_keys(html)


def test_an_ab_job_shows_its_paired_verdicts_and_each_rounds_change(ab_job):
    inputs = load_compare([str(ab_job)], out=ab_job.parent.parent)
    assert [s.result.run.run_id for s in inputs.baseline] == ["a1", "a2"]
    assert [s.result.run.run_id for s in inputs.currents] == ["b1", "b2"]
    html = render_compare(inputs)
    assert outline(html).sections == COMPARE_SECTION_IDS
    gate_json = json.loads((ab_job / "gate.json").read_text())
    assert "Paired verdicts" in section(html, "gate")
    assert "paired by round over 2" in section(html, "gate")
    banner = section(html, "verdict")
    assert "one run a side" not in banner and gate_json["verdict"] in banner.lower()
    rounds = section(html, "rounds")
    assert "round 1" in rounds and "round 2" in rounds and "a1 / b1" in rounds
    record = json.loads((ab_job / "ab.json").read_text())
    p95 = record["round_changes"][0][f"p95 {OVERVIEW}"]
    assert f"{(p95 - 1) * 100:+.1f}%" in rounds  # round 1's own change, as the gate shows it
    assert rounds.count('<tr class="side-') == 4  # every run of both sides
    data = payload(html)
    assert [s["record"]["run"]["run_id"] for s in data["current_rounds"]] == ["b2"]
    assert data["comparison"]["paired"] is True and data["comparison"]["job"] == ab_job.name
    round_chart = [c for c in data["charts"].values() if c["x"]["kind"] == "round"]
    assert len(round_chart) == 1 and round_chart[0]["data"][0] == [1.0, 2.0]
    header = html[html.index('<header class="top">'):html.index("</header>")]
    assert "A: profile:optimized" in header and "B: toggles:response_cache=false" in header
    assert "a1, a2" in section(html, "facts") and "b1, b2" in section(html, "facts")
    assert_no_keys(html)


def test_a_sides_runs_are_pooled_in_the_endpoints_table(ab_job):
    inputs = load_compare([str(ab_job)], out=ab_job.parent.parent)
    endpoints = section(render_compare(inputs), "endpoints")
    counts = sum(s.result.endpoints[OVERVIEW].count for s in inputs.currents)
    first = inputs.current.result.endpoints[OVERVIEW].count
    assert f">{counts:,}<" in endpoints and counts > first


def test_a_job_that_stopped_before_its_gate_is_judged_paired_for_the_page(tmp_path):
    job = make_ab_job(tmp_path / "reports", judge=False)
    html = render_compare(load_compare([str(job)], out=tmp_path / "reports"))
    banner = section(html, "verdict")
    assert "no gate.json" in banner and "state-none" not in banner
    assert "paired by round over 2" in section(html, "gate")


def test_one_side_of_a_job_against_a_run_is_not_paired(ab_job, runs):
    out = ab_job.parent.parent
    html = render_compare(load_compare([str(runs["baseline"]), f"{ab_job.name}:B"], out=out))
    assert "not paired by round" in section(html, "verdict")
    assert "B: toggles:response_cache=false" in html
    assert "b1, b2" in section(html, "facts")


def test_the_job_page_goes_into_the_job_directory(tmp_path):
    job = make_ab_job(tmp_path / "reports")
    path = write_compare([job.name], out=tmp_path / "reports")
    assert path == job / "report.html"
    assert path.stat().st_size < 2_000_000
    assert outline(path.read_text()).sections == COMPARE_SECTION_IDS


def test_two_runs_page_defaults_under_compare(runs, tmp_path):
    path = write_compare([str(runs["baseline"]), str(runs["current"])], out=tmp_path)
    assert path == tmp_path / "compare" / "base-1-vs-cur-1.html"


SAMPLES = {"http_503": ["503 Service Unavailable: upstream <b>agents</b> & config down",
                        "x" * 400]}


def _with_samples(run: Path) -> Path:
    record = results.load(run / "result.json")
    record.endpoints["GET /api/v1/agents"].error_samples = SAMPLES
    results.save(record, run / "result.json")
    return run


def test_sample_messages_are_shown_escaped_on_the_single_run_page(run_copy):
    errors = section(render_report(load_inputs(_with_samples(run_copy))), "throughput")
    assert "sample messages" in errors
    assert "upstream &lt;b&gt;agents&lt;/b&gt; &amp; config down" in errors
    assert "<b>agents</b>" not in errors
    assert "x" * 300 + "…" in errors and "x" * 301 not in errors  # long ones are cut


def test_without_samples_the_page_says_where_the_messages_are(runs):
    errors = section(render_report(load_inputs(runs["current"])), "throughput")
    assert "keeps no messages" in errors and "none kept" in errors


def test_sample_messages_of_both_sides_on_the_compare_page(runs, run_copy):
    html = render_compare(load_compare([str(runs["baseline"]), str(_with_samples(run_copy))]))
    errors = section(html, "throughput")
    assert "A: base-1" in errors and "B: cur-1" in errors  # a side column
    assert errors.count("config down") == 1  # only B's record has them


def test_a_single_run_page_is_unchanged_in_its_sections(runs):
    assert outline(render_report(load_inputs(runs["current"], runs["baseline"]))
                   ).sections == SECTION_IDS


# ---------------------------------------------------------------- refused


def test_the_same_run_twice_is_refused(runs):
    with pytest.raises(UsageError, match="the same run"):
        load_compare([str(runs["current"]), str(runs["current"])])


def test_a_missing_run_is_refused(runs, tmp_path):
    with pytest.raises(ConfigError, match="no run 'nope'"):
        load_compare([str(runs["current"]), "nope"], out=tmp_path)


def test_a_job_without_a_complete_round_is_refused(tmp_path):
    job = make_ab_job(tmp_path / "reports", judge=False)
    record = json.loads((job / "ab.json").read_text())
    for r in record["runs"]:
        if r["side"] == "B":
            r["status"] = "failed"
    (job / "ab.json").write_text(json.dumps(record))
    with pytest.raises(ConfigError, match="no complete round"):
        load_compare([str(job)], out=tmp_path / "reports")


def test_a_v1_record_is_refused(runs, tmp_path):
    v1 = tmp_path / "v1"
    v1.mkdir()
    shutil.copy(FIXTURES / "result_v1.json", v1 / "result.json")
    with pytest.raises(ConfigError, match="schema_version 1"):
        load_compare([str(v1), str(runs["current"])])


def test_a_bare_job_beside_a_run_needs_a_side(ab_job, runs):
    with pytest.raises(UsageError, match=":A or .*:B"):
        load_compare([str(ab_job), str(runs["current"])])


@pytest.mark.parametrize("count", [0, 3])
def test_compare_takes_one_job_or_two_sides(runs, count):
    with pytest.raises(UsageError, match="RUN_A RUN_B"):
        load_compare([str(runs["current"])] * count)


def test_one_argument_must_be_a_job(runs):
    with pytest.raises(UsageError, match="needs an ab job"):
        load_compare([str(runs["current"])])


def test_a_comparison_the_gate_refuses_is_shown_with_a_warning(runs, tmp_path):
    other = make_run(tmp_path / "bigger", {"GET /api/v1/agents": EndpointSpec(
        rps=6, latency_ms=LogNormal(45))}, seed=8, run_id="bigger-1", users=99)
    html = render_compare(load_compare([str(runs["baseline"]), str(other)]))
    assert "the gate refuses this comparison" in section(html, "verdict")
    assert 'class="mismatch"' in section(html, "facts")


def test_a_run_set_pools_exactly(ab_job):
    from harness import hdr
    from harness.model.latency import Latency
    from harness.outputs.report import pooled

    inputs = load_compare([str(ab_job)], out=ab_job.parent.parent)
    rounds = [s.result for s in inputs.currents]
    one = pooled.endpoint(rounds[:1], OVERVIEW)
    assert one is rounds[0].endpoints[OVERVIEW]  # one run: its record's figures as they are
    both = pooled.endpoint(rounds, OVERVIEW)
    merged = hdr.merge(r.endpoints[OVERVIEW].histogram for r in rounds)
    assert both.latency_ms == Latency.of(merged)  # never an average of percentiles
    assert both.count == sum(r.endpoints[OVERVIEW].count for r in rounds)
    agents = pooled.endpoint(rounds, "GET /api/v1/agents")
    assert agents.failures["http_503"] == sum(
        r.endpoints["GET /api/v1/agents"].failures["http_503"] for r in rounds) > 0
    assert pooled.endpoint(rounds, "GET /nowhere") is None
