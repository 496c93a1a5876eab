"""The run's views: terminal tables, summary.md and timeseries.csv, from built runs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console

from harness.model.latency import Latency
from harness.model.result import Freshness
from harness.outputs import markdown, tables, timeseries
from harness.outputs.numbers import ms
from harness.run.layout import list_runs
from tests.builders import EndpointSpec, LogNormal, build_run

OVERVIEW = "GET /api/v1/dashboard/overview"
AGENTS = "GET /api/v1/agents"


def traffic(scale: float) -> dict[str, EndpointSpec]:
    return {OVERVIEW: EndpointSpec(rps=20, latency_ms=LogNormal(30 * scale, 0.2),
                                   failures={"http_500": 0.05}, corrected_extra_ms=4.0),
            AGENTS: EndpointSpec(rps=5, latency_ms=LogNormal(80 * scale, 0.2),
                                 failures={"tenant_leak": 0.01}, server_missing=2,
                                 corrected_extra_ms=9.0)}


@pytest.fixture(scope="module")
def fast():
    return build_run(traffic(1.0), seconds=20, warmup_s=4, seed=11, run_id="r-fast")


@pytest.fixture(scope="module")
def slow():
    return build_run(traffic(3.0), seconds=20, warmup_s=4, seed=12, profile="naive",
                     run_id="r-slow")


def render(renderable) -> str:
    console = Console(record=True, width=200)
    console.print(renderable)
    return console.export_text()


def row_of(out: str, first: str) -> list[str]:
    line = next(ln for ln in out.splitlines() if ln.strip("│ ").startswith(first))
    return [cell.strip() for cell in line.strip().strip("│").split("│")]


def test_run_table_shows_every_endpoint_with_its_figures(fast):
    r = fast.result
    out = render(tables.run_table(r))
    assert "mixed / optimized: r-fast" in out
    o = r.endpoints[OVERVIEW]
    assert row_of(out, OVERVIEW) == [OVERVIEW, "400", "20.0", "5.00", ms(o.latency_ms.p50),
                                     ms(o.latency_ms.p95), ms(o.latency_ms.p99),
                                     ms(o.corrected_latency_ms.p99), "420"]
    a = r.endpoints[AGENTS]
    assert row_of(out, AGENTS) == [AGENTS, "100", "5.0", "1.00", ms(a.latency_ms.p50),
                                   ms(a.latency_ms.p95), ms(a.latency_ms.p99),
                                   ms(a.corrected_latency_ms.p99), "103"]
    t = r.totals
    assert row_of(out, "all") == ["all", "500", "25.0", "4.20", ms(t.latency_ms.p50),
                                  ms(t.latency_ms.p95), ms(t.latency_ms.p99),
                                  ms(t.corrected_latency_ms.p99), "523"]
    assert o.corrected_latency_ms.p99 > o.latency_ms.p99 + 3.9  # columns that can be told apart
    assert "tenant leaks: 1" in out
    assert f"client/server request counts differ by {100 * 2 / 525:.2f}%" in out
    assert "saturated" not in out


def test_run_table_warns_of_a_saturated_generator_and_shows_notes(fast):
    r = fast.result
    r = r.model_copy(update={"generator": r.generator.model_copy(update={"saturated": True}),
                             "run": r.run.model_copy(update={"notes": ["2 of 14 scrapes failed"]})})
    out = render(tables.run_table(r))
    assert "load generator saturated: latencies are not trustworthy" in out
    assert "2 of 14 scrapes failed" in out


@pytest.fixture(scope="module")
def no_server():
    return build_run({OVERVIEW: EndpointSpec(rps=2)}, seconds=3, warmup_s=1, server=False)


def test_run_table_says_how_much_of_the_gap_the_window_opening_explains(fast):
    """The gate judges the gap beyond the users at the opening (`unexplained_ratio`);
    the table says so, so a reader does not take the raw gap for the verdict's."""
    r = fast.result
    a = r.agreement.model_copy(update={"edge_users": 1})  # 2 apart, 1 explained
    out = render(tables.run_table(r.model_copy(update={"agreement": a})))
    assert (f"differ by {100 * 2 / 525:.2f}% ({100 * 1 / 525:.2f}% beyond the 1 users at "
            "the window's opening") in " ".join(out.split())
    old = r.agreement.model_copy(update={"edge_users": None})  # an older record
    assert "beyond" not in render(tables.run_table(r.model_copy(update={"agreement": old})))


def test_run_table_without_a_server_shows_dashes(no_server):
    out = render(tables.run_table(no_server.result))
    assert row_of(out, OVERVIEW)[-1] == "–"
    assert "client/server" not in out


def test_side_by_side_shows_each_p95_and_the_ratio(fast, slow):
    out = render(tables.side_by_side([fast.result, slow.result]))
    assert "optimized p95" in out and "naive p95" in out and "naive / optimized" in out
    for name in (OVERVIEW, AGENTS, "all"):
        a = (fast.result.totals if name == "all" else fast.result.endpoints[name]).latency_ms.p95
        b = (slow.result.totals if name == "all" else slow.result.endpoints[name]).latency_ms.p95
        assert row_of(out, name) == [name, ms(a), ms(b), f"{b / a:,.1f}×"]
        assert 2.5 < b / a < 3.5  # the naive run is three times slower


def test_side_by_side_of_an_endpoint_missing_in_one_run(fast):
    other = build_run({OVERVIEW: EndpointSpec(rps=2)}, seconds=3, warmup_s=1, profile="naive")
    out = render(tables.side_by_side([fast.result, other.result]))
    assert row_of(out, AGENTS) == [AGENTS, ms(fast.result.endpoints[AGENTS].latency_ms.p95),
                                   "–", "–"]


def test_runs_table_lists_run_directories_newest_first(tmp_path: Path, fast, slow):
    runs = tmp_path / "runs"
    fast.write(runs / "20270115T080000Z-a")
    slow.write(runs / "20270116T080000Z-b")
    (runs / "20270117T080000Z-broken").mkdir()
    (runs / "20270117T080000Z-broken" / "result.json").write_text('{"schema')
    out = render(tables.runs_table(list_runs(runs), str(runs)))
    lines = [ln for ln in out.splitlines() if "2027011" in ln]
    assert [ln.split("│")[1].strip() for ln in lines] == [
        "20270117T080000Z-broken", "20270116T080000Z-b", "20270115T080000Z-a"]
    assert row_of(out, "20270117T080000Z-broken")[1:] == ["–", "–", "no result", "–", "–", "–",
                                                          "–"]
    assert row_of(out, "20270116T080000Z-b") == [
        "20270116T080000Z-b", "mixed", "naive", "complete", "2027-01-15T08:00:00", OVERVIEW,
        ms(slow.result.endpoints[OVERVIEW].latency_ms.p95), "–"]


def test_runs_table_of_a_missing_directory_is_empty(tmp_path: Path):
    out = render(tables.runs_table(list_runs(tmp_path / "nothing"), "nothing"))
    assert "runs in" in out and "2027" not in out


def test_summary_markdown(fast):
    r = fast.result
    md = markdown.summary_markdown(r)
    lines = md.splitlines()
    assert lines[0] == "## Run `r-fast`: mixed / optimized (complete)"
    assert lines[2] == ("10 users, 20s measured after 4s warm-up, dataset `small` (seed 42), "
                        "1 Locust worker(s), 1 target worker(s), faults `healthy`, "
                        "commit `000000000000`.")
    for word in ("verdict", "regress", "improved", "inconclusive", "pass"):
        assert word not in md.lower()
    for name, e in [*r.endpoints.items(), ("all", r.totals)]:
        lat = e.latency_ms
        assert (f"| `{name}` | {e.count:,} | {e.throughput_rps:,.1f} | "
                f"{100 * e.failure_rate:.2f} | {ms(lat.p50)} | {ms(lat.p95)} | "
                f"{ms(lat.p99)} | {ms(lat.max)} |") in lines
    assert "Tenant leaks: **1**; degraded responses: 0; partial responses: 0." in lines
    assert "Client/server agreement: 525 vs 523 requests." in lines
    assert "Freshness" not in md and "Warning" not in md
    assert "scrape" not in md and "Server metrics missing" not in md


def test_summary_markdown_says_when_server_metrics_are_missing(no_server):
    md = markdown.summary_markdown(no_server.result)
    assert "**Server metrics missing for the measured window.**" in md.splitlines()
    assert "Client/server agreement: 8 vs – requests." in md.splitlines()  # 6 + 2 cool-down


def test_summary_markdown_counts_failed_scrapes():
    built = build_run({OVERVIEW: EndpointSpec(rps=2)}, seconds=3, warmup_s=1,
                      failed_scrapes=(2,))  # scrapes at T0, T0+2 (fails), T0+4, and 2 edges
    md = markdown.summary_markdown(built.result)
    assert "**1 metric scrape(s) failed** (4 answered)." in md.splitlines()
    assert "Server metrics missing" not in md


def test_summary_markdown_freshness_and_saturation(fast):
    r = fast.result
    fresh = Freshness(samples=12, timeouts=1, latency_ms=Latency(count=12, p95=140.25))
    r = r.model_copy(update={
        "correctness": r.correctness.model_copy(update={"freshness": fresh}),
        "generator": r.generator.model_copy(update={"saturated": True})})
    md = markdown.summary_markdown(r)
    assert "Freshness after writes: 12 samples, p95 140 ms, 1 timeouts." in md
    assert "**Warning: the load generator was saturated" in md


@pytest.fixture(scope="module")
def short():
    """Few windows: every row's percentiles cost a histogram summary (tens of ms each)."""
    return build_run(traffic(1.0), seconds=2, warmup_s=2, ramp_s=1, seed=13)


@pytest.fixture(scope="module")
def short_rows(short):
    return timeseries.rows(short.result, short.log)


def test_timeseries_rows_per_second_and_endpoint(short, short_rows):
    r, log, rows = short.result, short.log, short_rows
    cells = [(w.t, k) for w in r.windows.seconds for k in sorted(w.endpoints)]
    assert [(row["t"], row["endpoint"]) for row in rows] == cells
    assert len(rows) == 2 * (2 + 2 + 1)  # both endpoints in every second
    assert [row["phase"] for row in rows[::2]] == ["ramp", "warmup", "measured", "measured",
                                                   "cooldown"]
    for row in rows:
        lat = Latency.of(log.histogram(row["endpoint"], row["t"]))
        assert row["count"] == lat.count == row["rps"]
        assert (row["p50_ms"], row["p95_ms"], row["p99_ms"], row["max_ms"]) == (
            lat.p50, lat.p95, lat.p99, lat.max)
    measured = [row for row in rows if row["phase"] == "measured"]
    assert [row["count"] for row in measured if row["endpoint"] == OVERVIEW] == [20, 20]
    assert sum(row["failures"] for row in measured if row["endpoint"] == OVERVIEW) == 2
    assert {row["users"] for row in measured} == {10}


def test_timeseries_without_a_log_has_no_percentiles(fast):
    rows = timeseries.rows(fast.result, None)
    assert len(rows) == 2 * (4 + 20 + 1)
    assert all(row[c] is None for row in rows for c in ("p50_ms", "p95_ms", "p99_ms", "max_ms"))
    assert sum(row["count"] for row in rows if row["phase"] == "measured") == 500


def test_write_timeseries_is_a_csv_pandas_reads(tmp_path: Path, short, short_rows):
    path = tmp_path / "timeseries.csv"
    timeseries.write_timeseries(short.result, short.log, path)
    df = pd.read_csv(path)
    assert list(df.columns) == list(timeseries.COLUMNS) == [
        "t", "phase", "users", "endpoint", "count", "failures", "rps", "p50_ms", "p95_ms",
        "p99_ms", "max_ms"]
    assert len(df) == len(short_rows) == 10
    assert df["t"].tolist() == [row["t"] for row in short_rows]
    assert df["endpoint"].tolist() == [row["endpoint"] for row in short_rows]
    assert df["count"].tolist() == [row["count"] for row in short_rows]
    assert df["p95_ms"].tolist() == pytest.approx([row["p95_ms"] for row in short_rows])
    assert set(df["phase"]) == {"ramp", "warmup", "measured", "cooldown"}
    assert df.groupby("phase")["count"].sum()["measured"] == 2 * 25


def test_write_timeseries_without_log_or_windows(tmp_path: Path, fast):
    path = tmp_path / "timeseries.csv"
    timeseries.write_timeseries(fast.result, None, path)
    df = pd.read_csv(path)
    assert len(df) == 50 and df["p95_ms"].isna().all()
    assert df["count"].sum() == 25 * (4 + 20 + 1)
    v1_like = fast.result.model_copy(update={"windows": None})
    timeseries.write_timeseries(v1_like, None, path)
    assert path.read_text().splitlines() == [",".join(timeseries.COLUMNS)]
    assert len(pd.read_csv(path)) == 0


@pytest.mark.parametrize(("value", "text"), [
    (0.1234, "0.123"), (5.044, "5.04"), (12.34, "12.3"), (123.4, "123"), (1234.5, "1,234"),
    (-0.5, "-0.500"), (0.0, "0.000"), (None, "–"), (float("nan"), "–"), (float("inf"), "–"),
])
def test_a_latency_reads_to_three_significant_figures_in_every_view(value, text):
    assert ms(value) == text
