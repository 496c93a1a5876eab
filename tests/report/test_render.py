"""The single-run page from built runs: every section in order, the embedded data, the
edge cases (no baseline, v1, an endpoint without requests, only failures) and no key."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from harness import hdr
from harness.model import intervals
from harness.outputs.report import decode_payload, load_inputs, render_report, write_report
from tests.builders import EndpointSpec, LogNormal
from tests.report.conftest import API_KEYS, FIXTURES, SECTION_IDS, make_run, outline

PAYLOAD = re.compile(r'<script type="application/gzip\+base64" id="report-data"[^>]*>'
                     r"([A-Za-z0-9+/=]+)</script>")


def payload(html: str) -> dict:
    match = PAYLOAD.search(html)
    assert match, "no embedded data"
    return decode_payload(match.group(1))


def section(html: str, sid: str) -> str:
    start = html.index(f'<section id="{sid}"')
    return html[start:html.index("</section>", start)]


def assert_no_keys(html: str) -> None:
    data = json.dumps(payload(html))
    for key in API_KEYS:
        assert key not in html
        assert key not in data


def test_a_run_against_its_baseline_has_every_section_in_order(runs):
    html = render_report(load_inputs(runs["current"], runs["baseline"]))
    page = outline(html)
    assert page.sections == SECTION_IDS
    assert page.external == []  # nothing to fetch: scripts and styles are inline
    assert page.tables >= 8
    data = payload(html)
    assert set(page.charts) == set(data["charts"])  # every placeholder has its data, once
    assert len(page.charts) == len(set(page.charts)) >= 10
    banner = section(html, "verdict")
    assert "state-none" not in banner and "against baseline" in banner
    facts = section(html, "facts")
    assert "cur-1" in facts and "base-1" in facts
    endpoints = section(html, "endpoints")
    assert "GET /api/v1/dashboard/overview" in endpoints and "→" in endpoints
    assert "no requests in the measured window" in endpoints  # POST /api/v1/calls
    dist = section(html, "distribution")
    assert "shift function" in dist and "95% band" in dist
    assert "Slowest traces" not in html and "not traced" in section(html, "traces")
    assert "v-" in section(html, "gate")
    assert_no_keys(html)


def test_the_embedded_data_holds_the_record_and_the_raw_interval_log(runs):
    html = render_report(load_inputs(runs["current"], runs["baseline"]))
    data = payload(html)
    assert data["format"] == "harness-report-data/1"
    text = (runs["current"] / "windows.hlog").read_text()
    assert data["current"]["interval_log"] == text  # the file, byte for byte
    log = intervals.parse(data["current"]["interval_log"])
    record = data["current"]["record"]
    key = "GET /api/v1/dashboard/overview"
    measured = [w["t"] for w in record["windows"]["seconds"] if w["phase"] == "measured"]
    whole = hdr.decode(record["endpoints"][key]["histogram"])
    assert log.merged(key, measured).get_total_count() == whole.get_total_count()
    assert data["baseline"][0]["record"]["run"]["run_id"] == "base-1"
    assert data["gate"]["verdict"] in ("pass", "regressed", "inconclusive")


def test_a_run_without_baseline_says_so(runs):
    html = render_report(load_inputs(runs["current"]))
    assert outline(html).sections == SECTION_IDS
    banner = section(html, "verdict")
    assert "state-none" in banner and "no baseline" in banner
    assert "no gate" in section(html, "gate")
    assert "no baseline: the curves show this run alone" in section(html, "distribution")
    assert_no_keys(html)


def test_the_runs_gate_json_is_the_verdict(runs, run_copy, tmp_path):
    shutil.copy(FIXTURES / "gate_regressed.json", run_copy / "gate.json")
    html = render_report(load_inputs(run_copy))
    banner = section(html, "verdict")
    assert "state-regressed" in banner and "tenant leak" in banner
    assert "p95 GET /api/v1/agents/{agent_id}" in banner  # a top regression, one line
    assert "regressed" in section(html, "gate")


def test_a_v1_record_renders_with_messages(tmp_path):
    run = tmp_path / "v1"
    run.mkdir()
    shutil.copy(FIXTURES / "result_v1.json", run / "result.json")
    html = render_report(load_inputs(run))
    assert outline(html).sections == SECTION_IDS
    assert "schema_version 1" in section(html, "latency")
    assert "schema_version 1" in section(html, "throughput")
    assert payload(html)["current"]["interval_log"] == ""


def test_only_failures_and_an_endpoint_without_requests(tmp_path):
    run = make_run(tmp_path / "failing", {
        "GET /api/v1/agents": EndpointSpec(rps=5, latency_ms=LogNormal(5),
                                           failures={"http_500": 1.0}),
        "GET /api/v1/activity": EndpointSpec(rps=0)}, seed=3)
    html = render_report(load_inputs(run))
    assert outline(html).sections == SECTION_IDS
    errors = section(html, "throughput")
    assert "http_500" in errors and "100.00%" in errors and "server error status" in errors
    assert "no requests in the measured window" in section(html, "endpoints")
    assert "no requests in the measured window" in section(html, "distribution")


def test_no_requests_at_all_and_no_server_metrics(tmp_path):
    run = make_run(tmp_path / "idle", {"GET /api/v1/agents": EndpointSpec(rps=0)}, seed=4,
                   server=False)
    html = render_report(load_inputs(run))
    assert outline(html).sections == SECTION_IDS
    assert "no server metrics" in section(html, "caches")
    assert "no server metrics" in section(html, "database")


def test_tenant_leaks_are_prominent(tmp_path):
    run = make_run(tmp_path / "leaky", {
        "GET /api/v1/agents": EndpointSpec(rps=5, failures={"tenant_leak": 0.1})}, seed=5)
    html = render_report(load_inputs(run))
    correctness = section(html, "correctness")
    assert 'class="leaks bad"' in correctness and "another user" in correctness


def test_lost_writes_are_prominent_and_a_clean_check_is_said(run_copy):
    result = json.loads((run_copy / "result.json").read_text())
    result["writes"] = {"acknowledged": 120, "found": 118, "lost": 2, "duplicates": 1,
                        "lost_ids": [4711, 4712]}
    (run_copy / "result.json").write_text(json.dumps(result))
    correctness = section(render_report(load_inputs(run_copy)), "correctness")
    assert 'class="leaks bad"' in correctness and "lost <strong>2</strong>" in correctness
    assert "4711, 4712" in correctness and "1 acknowledged twice" in correctness
    result["writes"] = {"acknowledged": 120, "found": 120, "lost": 0, "duplicates": 0}
    (run_copy / "result.json").write_text(json.dumps(result))
    correctness = section(render_report(load_inputs(run_copy)), "correctness")
    assert "Acknowledged writes: <strong>120</strong>, found 120, lost <strong>0</strong>" \
        in correctness and "4711" not in correctness


def test_the_count_gap_says_what_the_window_opening_explains(run_copy):
    result = json.loads((run_copy / "result.json").read_text())
    a = result["agreement"]
    a.update(client_count=1000, server_count=1004, diff_ratio=0.004, edge_users=3)
    (run_copy / "result.json").write_text(json.dumps(result))
    correctness = section(render_report(load_inputs(run_copy)), "correctness")
    assert ("(gap 0.40%; 0.10% beyond the 3 users at the window's opening"
            in correctness), correctness
    a.update(server_count=1000, diff_ratio=0.0)  # no gap: nothing to explain, as the table
    (run_copy / "result.json").write_text(json.dumps(result))
    correctness = section(render_report(load_inputs(run_copy)), "correctness")
    assert "(gap 0.00%)" in correctness and "beyond" not in correctness
    a.update(server_count=1004, diff_ratio=0.004)
    a.pop("edge_users")  # a record from before the allowance: the gap alone
    (run_copy / "result.json").write_text(json.dumps(result))
    correctness = section(render_report(load_inputs(run_copy)), "correctness")
    assert "(gap 0.40%)" in correctness and "beyond" not in correctness


def test_write_report_defaults_to_the_run_directory(run_copy):
    path = write_report(run_copy)
    assert path == run_copy / "report.html"
    assert outline(path.read_text()).sections == SECTION_IDS
    assert path.stat().st_size < 2_000_000
    assert not list(run_copy.glob(".*.tmp"))


@pytest.mark.parametrize("secret", API_KEYS)
def test_a_key_that_reached_the_record_is_redacted_too(run_copy, secret):
    result = json.loads((run_copy / "result.json").read_text())
    result["run"]["notes"].append(f"authorization: Bearer {secret}")
    (run_copy / "result.json").write_text(json.dumps(result))
    html = render_report(load_inputs(run_copy))
    assert "[redacted]" in html
    assert_no_keys(html)


def test_sizes_stay_small(runs):
    html = render_report(load_inputs(runs["current"], runs["baseline"]))
    assert len(html.encode()) < 500_000  # 60 s of 26 req/s, both logs embedded


def test_a_missing_chart_library_would_be_noticed():
    vendor = Path(__file__).resolve().parents[2] / "harness/outputs/report/vendor/uplot"
    assert (vendor / "LICENSE").read_text().startswith("The MIT License")
    assert "uPlot (v1.6.32)" in (vendor / "uPlot.iife.min.js").read_text()[:80]


def test_a_baseline_of_rounds_from_the_store(runs, tmp_path):
    from harness import baselines

    store = tmp_path / "store"
    second = make_run(tmp_path / "round-2", seed=7, run_id="base-2")
    baselines.save(store, "nightly", [runs["baseline"], second])
    html = render_report(load_inputs(runs["current"], "nightly", store))
    assert "baseline <code>nightly</code>" in html
    assert "2 rounds" in section(html, "facts")
    assert "shift function" in section(html, "distribution")
    data = payload(html)
    assert [b["record"]["run"]["run_id"] for b in data["baseline"]] == ["base-1", "base-2"]
    assert data["gate"]["baseline"]["run_ids"] == ["base-1", "base-2"]
    assert_no_keys(html)


def test_a_comparison_the_gate_refuses_is_shown_with_a_warning(runs, tmp_path):
    other = make_run(tmp_path / "bigger", seed=8, run_id="bigger-1", users=99)
    html = render_report(load_inputs(runs["current"], other))
    banner = section(html, "verdict")
    assert "the gate refuses this comparison" in banner and "users" in banner
    assert 'class="mismatch"' in section(html, "facts")


def test_a_saturated_generator_cannot_be_judged(runs, tmp_path):
    hot = make_run(tmp_path / "hot", seed=9, run_id="hot-1", saturated=True)
    html = render_report(load_inputs(hot, runs["baseline"]))
    banner = section(html, "verdict")
    assert "state-cannot_judge" in banner and "cannot judge" in banner
    assert "SATURATED" in section(html, "facts")


def test_the_gated_baseline_is_found_in_the_store(runs, run_copy, tmp_path):
    from harness import baselines
    from harness.model import policy as pol
    from harness.run import gate

    store = tmp_path / "store"
    baselines.save(store, "main", [runs["baseline"]])
    judged = gate.judge(gate.read_runs([run_copy]), baselines.load(store / "main"), pol.Policy())
    gate.write(judged, run_copy)
    html = render_report(load_inputs(run_copy, store=store))
    assert "baseline <code>main</code>" in html and "base-1" in section(html, "facts")
    alone = render_report(load_inputs(run_copy, store=tmp_path / "empty"))
    assert "which is not in" in section(alone, "verdict")
    assert "base-1" not in section(alone, "facts")


def test_the_slowest_traces_expand_to_their_spans(tmp_path):
    from harness.model import result as results
    from harness.model.trace_summary import EndpointTraces, SlowTrace, TraceSummary
    from tests.builders import T0, otlp_line, otlp_server_span, otlp_span

    run = make_run(tmp_path / "traced", {"GET /api/v1/agents": EndpointSpec(rps=5)}, seed=12)
    record = results.load(run / "result.json")
    tid, root = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    record.traces = TraceSummary(sampling=1.0, spans=3, traces=1, endpoints={
        "GET /api/v1/agents": EndpointTraces(traced_requests=1, server_traces=1, slowest=[
            SlowTrace(trace_id=tid, t=T0 + 12, client_ms=9.0, server_ms=8.0, spans=3)])})
    results.save(record, run / "result.json")
    spans = [otlp_server_span(tid, root, "GET", "/api/v1/agents", 0, 8, t0=T0 + 12),
             otlp_span(tid, "1111111111111111", "cache.lookup agents", 0.5, 6, parent=root,
                       t0=T0 + 12),
             otlp_span(tid, "2222222222222222", "SELECT", 1, 5, parent="1111111111111111",
                       kind="client", t0=T0 + 12, db_system="postgresql")]
    (run / "spans.jsonl").write_text(otlp_line(spans) + "\n")
    traces = section(render_report(load_inputs(run)), "traces")
    assert "Slowest traces" in traces and tid in traces
    rows = re.findall(r'<tr class="cat-(\w+)"><th scope="row" style="padding-left: (\d+)px">'
                      r"([^<]+)</th>", traces)
    assert rows == [("app", "6", "GET /api/v1/agents"), ("cache", "20", "cache.lookup agents"),
                    ("db", "34", "SELECT")]


def test_the_baselines_series_are_drawn_beside_the_runs(runs):
    data = payload(render_report(load_inputs(runs["current"], runs["baseline"])))
    by_title = {c["title"]: [s["label"] for s in c["series"]] for c in data["charts"].values()}
    assert "baseline all" in by_title["throughput"]
    assert "baseline p95" in by_title["pool acquire wait p95"]
    assert "baseline in use" in by_title["connection pool"]
    alone = payload(render_report(load_inputs(runs["current"])))
    assert not any("baseline" in s["label"] for c in alone["charts"].values()
                   for s in c["series"])
