"""The benchmark page, rendered from sets of sessions built in memory: every section is
there, the verdict first, the gate's checks with interval and tolerance, the machines side
by side, the data embedded once and decodable, no credential anywhere."""

from __future__ import annotations

import random

import pytest

from harness.analysis import bench as gate_bench
from harness.model import policy as pol
from harness.model.bench import BenchmarkRun, BenchSet
from harness.outputs.report import render
from harness.outputs.report.bench_page import (
    PAYLOAD_FORMAT,
    BenchInputs,
    render_bench,
    write_bench,
)
from tests.report.conftest import outline

SECRET_URL = "postgresql://bench:Sup3rS3cret@127.0.0.1:5432/bench"
SECRET_TOKEN = "Bearer abcdefSECRETTOKEN123"
FAST, SLOW, NEW = "test_cache_get_hit", "test_overview_render", "test_new_one"


def session(seed: int, medians: dict[str, float], rounds: int = 40, data: bool = True,
            cpu: str = "Test CPU @ 2.0GHz") -> BenchmarkRun:
    """One pytest-benchmark session: per benchmark `rounds` log-normal rounds around a
    median (seconds), pytest-benchmark's summary of them, and its machine and commit."""
    rng = random.Random(seed)
    benchmarks = []
    for name, median in medians.items():
        values = sorted(median * rng.lognormvariate(0, 0.05) for _ in range(rounds))
        mean = sum(values) / rounds
        sd = (sum((v - mean) ** 2 for v in values) / (rounds - 1)) ** 0.5
        stats = {"min": values[0], "max": values[-1], "mean": mean, "stddev": sd,
                 "median": values[rounds // 2], "rounds": rounds, "iterations": 1}
        if data:
            stats["data"] = values
        benchmarks.append({"group": None, "name": name, "param": None,
                           "fullname": f"scenarios/benchmarks/test_x_bench.py::{name}",
                           "extra_info": {"database": SECRET_URL, "auth": SECRET_TOKEN},
                           "stats": stats})
    return BenchmarkRun.model_validate({
        "machine_info": {"cpu": {"brand_raw": cpu, "count": 2}, "python_version": "3.11.2",
                         "python_implementation": "CPython", "system": "Linux",
                         "machine": "x86_64", "release": "6.1.0", "node": "ci-1"},
        "commit_info": {"id": f"{seed:040x}", "dirty": False, "branch": "main"},
        "datetime": "2026-12-01T10:00:00", "version": "5.1.0", "benchmarks": benchmarks})


def bench_set(seed: int, sessions: int, scale: float = 1.0, keep: bool = True,
              extra: dict[str, float] | None = None) -> BenchSet:
    medians = {FAST: 2e-6 * scale, SLOW: 3e-3, **(extra or {})}
    return BenchSet.of([session(seed * 100 + i, medians) for i in range(sessions)],
                       keep_rounds=keep, created_at="2026-12-01T10:00:00+00:00")


@pytest.fixture(scope="module")
def compared() -> BenchInputs:
    """Seven sessions a side; the fast benchmark 40% slower, a new one only in this run."""
    base = bench_set(1, 7, keep=False)
    cur = bench_set(2, 7, scale=1.4, extra={NEW: 5e-4})
    gate = gate_bench.compare_benchmarks(
        base, cur, gate_bench.settings_from(pol.Policy()), labels=("baseline main", "current"),
        run_ids=("main", "20261201T100000Z"))
    return BenchInputs(current=cur, run_id="20261201T100000Z", baseline=base,
                       baseline_name="main", gate=gate)


def payload(html: str) -> dict:
    start = html.index('id="report-data"')
    body = html[html.index(">", start) + 1:html.index("</script>", start)]
    return render.decode_payload(body)


def test_a_compared_run_shows_the_verdict_first_then_every_section(compared):
    html = render_bench(compared)
    page = outline(html)
    assert page.sections[:5] == ["verdict", "facts", "benchmarks", "charts", "gate"]
    verdict = html[html.index('id="verdict"'):html.index('id="facts"')]
    assert compared.gate.verdict == "regressed" and "regressed" in verdict
    assert f"{FAST}:" in verdict and "tolerance +" in verdict  # the top regression's line
    gate = html[html.index('id="gate"'):]
    for check in compared.gate.checks:
        assert check.name in gate and check.tolerance.text in gate
    assert "[+" in gate  # a regression's interval
    assert NEW in gate and "new: not in baseline main" in gate


def test_each_benchmark_has_its_sessions_stats_and_its_charts(compared):
    html = render_bench(compared)
    table = html[html.index('id="benchmarks"'):html.index('id="charts"')]
    for name in (FAST, SLOW, NEW):
        assert f">{name}</th>" in table
    for heading in ("min (µs)", "median (µs)", "mean (µs)", "stddev (µs)", "rounds",
                    "min (ms)"):
        assert heading in table
    assert table.count("<caption>this run</caption>") == 3
    assert table.count("<caption>baseline main</caption>") == 2
    assert "not in the baseline" in table
    data = payload(html)
    assert data["format"] == PAYLOAD_FORMAT
    kinds = [c["x"]["kind"] for c in data["charts"].values()]
    assert kinds.count("session") == 3
    # the baseline was stored without its rounds: no rounds chart for what it measured
    assert kinds.count("nines") == 3
    session_chart = next(c for c in data["charts"].values()
                         if c["title"].startswith(FAST) and c["x"]["kind"] == "session")
    assert [s["label"] for s in session_chart["series"]] == ["this run", "baseline main"]
    assert session_chart["data"][0] == list(range(1, 8))
    assert all(v is not None for col in session_chart["data"][1:] for v in col)


def test_the_machines_stand_side_by_side_and_a_mismatch_is_marked():
    base = BenchSet.of([session(1, {FAST: 2e-6}, cpu="Other CPU")], keep_rounds=True)
    cur = BenchSet.of([session(2, {FAST: 2e-6})], keep_rounds=True)
    gate = gate_bench.compare_benchmarks(base, cur, gate_bench.settings_from(pol.Policy()),
                                         allow_mismatch=True)
    html = render_bench(BenchInputs(current=cur, run_id="r", baseline=base,
                                    baseline_name="old", gate=gate))
    facts = html[html.index('id="facts"'):html.index('id="benchmarks"')]
    assert '<tr class="mismatch"><th scope="row">CPU model</th><td>Test CPU @ 2.0GHz</td>' \
           '<td>Other CPU</td>' in facts
    assert "compared across a machine mismatch" in html
    # one session a side: the rounds are the samples, and both sides' are drawn
    assert [c["x"]["kind"] for c in payload(html)["charts"].values()] == ["session", "nines"]


def test_a_run_alone_says_it_was_not_compared_and_embeds_its_sessions(tmp_path):
    cur = bench_set(3, 2)
    out = write_bench(BenchInputs(current=cur, run_id="alone"), tmp_path / "report.html")
    html = out.read_text()
    assert outline(html).sections[:5] == ["verdict", "facts", "benchmarks", "charts", "gate"]
    assert "Verdict: <span class=\"verdict-word\">not compared" in html
    assert "no gate: this run was not compared" in html
    data = payload(html)
    assert data["baseline"] == [] and data["gate"] is None
    assert data["current"]["record"]["run"]["run_id"] == "alone"
    # fewer than MIN_SESSIONS sessions: stored, and embedded, with their rounds
    embedded = BenchSet.model_validate(data["current"]["record"]["set"])
    assert embedded.raw_rounds and len(embedded.sessions) == 2


def test_seven_sessions_are_embedded_as_stored_without_their_rounds(compared):
    data = payload(render_bench(compared))
    embedded = BenchSet.model_validate(data["current"]["record"]["set"])
    assert len(embedded.sessions) == 7 and not embedded.raw_rounds
    assert len(render_bench(compared)) < 600_000


def test_no_credential_gets_into_the_page(compared):
    html = render_bench(compared)
    text = html + str(payload(html))
    for secret in ("Sup3rS3cret", "abcdefSECRETTOKEN123"):
        assert secret not in text
    assert "postgresql://bench:[redacted]@127.0.0.1:5432/bench" in html  # the rest is kept
