"""The history page (`write_history`) from a folder store of built runs, and from PostgreSQL.

Ten runs of `mixed` whose overview p95 steps up from run #7 on (median 30 -> 45 ms), one
gated regressed and one inconclusive, one without a report, and an older `dashboard` run:
the page parses, holds one chart per series, links each run that has a page, marks the
change point at the run it starts, says what it leaves out; in Chromium it loads with
no console error and no request, every chart draws, and a click opens the run.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.model.server import CacheStats, UpstreamStats
from harness.model.stored import LoadedRun
from harness.outputs.report import decode_payload
from harness.outputs.report.history import series_of, write_history
from harness.store.folder import FolderStore
from harness.store.postgres import PostgresStore
from tests.harness.test_store import pg_url, stored_run  # noqa: F401 - pg_url: a fixture
from tests.report.conftest import API_KEYS, FIXTURES, outline

try:  # the browser helpers skip their module without Playwright; the rest runs anyway
    from tests.report.test_browser import assert_clean, browser, open_page
except pytest.skip.Exception as exc:
    browser = None
    SKIP_BROWSER = str(exc)
else:
    from tests.report.test_browser import CHROMIUM
    SKIP_BROWSER = "" if CHROMIUM.exists() else f"no Chromium at {CHROMIUM}"

STEP_AT = 6  # index of the first slow run: run #7 on the page
VERDICTS = {7: "regressed", 8: "inconclusive", 4: "pass"}


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("history") / "runs"
    for n in range(10):
        stored_run(root, n + 1, overview_ms=30 if n < STEP_AT else 45,
                   verdict=VERDICTS.get(n), report=n != 2, seed=100 + n)
    stored_run(root, 0, scenario="dashboard")
    return root


@pytest.fixture(scope="module")
def page(store_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("page") / "history.html"
    return write_history(FolderStore(store_dir), scenario=None, last=None, out=out)


def payload(html: str) -> dict:
    data = re.search(r'<script type="application/gzip\+base64" id="report-data"[^>]*>(.*?)'
                     r"</script>", html, re.DOTALL).group(1)
    return decode_payload(data)


def section(html: str, sid: str) -> str:
    return html.split(f'<section id="{sid}"', 1)[1].split("</section>", 1)[0]


def test_the_page_has_its_sections_and_one_chart_per_series(page, store_dir):
    html = page.read_text()
    o = outline(html)
    assert o.sections == ["trends", "change-points", "runs"]
    assert o.external == []  # nothing loaded from anywhere
    runs = FolderStore(store_dir).load(scenario="mixed")
    series = series_of(runs)
    titles = {s["title"] for s in series}
    assert {"p95 GET /api/v1/dashboard/overview", "p95 GET /api/v1/agents",
            "throughput, all endpoints"} <= titles
    assert "p95 POST /api/v1/calls" not in titles  # no requests in any run: no series
    assert len(o.charts) == len(series) == len(set(o.charts))
    data = payload(html)
    assert data["format"] == "harness-history-data/1"
    assert set(data["charts"]) == set(o.charts)
    assert [r["run_id"][-3:] for r in data["runs"]] == [f"r{n:02d}" for n in range(1, 11)]
    assert data["current"]["record"]["run"]["run_id"].endswith("r10")


def test_each_point_is_a_run_and_each_run_links_to_its_page(page, store_dir):
    html = page.read_text()
    data = payload(html)
    overview = next(c for c in data["charts"].values()
                    if c["title"] == "p95 GET /api/v1/dashboard/overview")
    assert overview["data"][0] == list(range(1, 11)) and overview["x"]["kind"] == "run"
    for n, run in enumerate(data["runs"]):
        if n == 2:  # pushed without a report: listed, not linked
            assert run["href"] is None
            assert '<a href="' not in section(html, "runs").split(run["run_id"])[0][-60:]
            continue
        target = (page.parent / run["href"]).resolve()
        assert target == (store_dir / f"r{n + 1:02d}" / "report.html").resolve()
        assert f'<a href="{run["href"]}"><code>{run["run_id"]}</code></a>' in section(html,
                                                                                      "runs")


def test_the_step_is_marked_at_the_run_it_starts(page):
    html = page.read_text()
    data = payload(html)
    overview = next(c for c in data["charts"].values()
                    if c["title"] == "p95 GET /api/v1/dashboard/overview")
    assert [m[0] for m in overview["marks"]] == [STEP_AT + 1]
    assert re.fullmatch(r"change \+\d+\.\d%", overview["marks"][0][1])
    slow = data["runs"][STEP_AT]["run_id"]
    rows = section(html, "change-points")
    assert "p95 GET /api/v1/dashboard/overview</th><td>7</td>" in rows
    assert f"<code>{slow}</code>" in rows and "07cccccccc" in rows


def test_the_gates_verdicts_are_marked(page):
    data = payload(page.read_text())
    overview = next(c for c in data["charts"].values()
                    if c["title"] == "p95 GET /api/v1/dashboard/overview")
    labels = [s["label"] for s in overview["series"]]
    assert labels == ["p95", "gate: regressed", "gate: inconclusive"]
    regressed, inconclusive = overview["data"][2], overview["data"][3]
    assert [i for i, v in enumerate(regressed) if v is not None] == [7]
    assert [i for i, v in enumerate(inconclusive) if v is not None] == [8]
    assert regressed[7] == overview["data"][1][7]  # on the run's own point
    runs = section(page.read_text(), "runs")
    assert 'class="text v-regressed">regressed' in runs and "not gated" in runs


def test_the_default_scenario_is_the_newest_runs_and_the_others_are_named(page):
    html = page.read_text()
    assert "History of <code>mixed</code>" in html
    assert "the store also holds dashboard (--scenario NAME)" in html
    assert "dashboard-r00" not in html


def test_hit_ratios_and_retry_rates_are_series_in_percent(store_dir):
    runs = FolderStore(store_dir).load(scenario="mixed", last=3)
    with_server = []
    for n, r in enumerate(runs):
        server = r.result.server
        caches = {"overview": CacheStats(hits=90 - n, misses=10 + n, stale_hits=0, evictions={},
                                         hit_ratio=(90 - n) / 100)}
        upstream = UpstreamStats(logical_requests=100, attempts=110, retries={"timeout": 10},
                                 retry_rate=None if n == 1 else 10 / 110,
                                 retry_amplification=1.1, failures={}, failure_rate=0,
                                 timeouts=0, fallbacks={}, latency_ms=None)
        result = r.result.model_copy(update={"server": server.model_copy(
            update={"caches": caches, "upstream": upstream})})
        with_server.append(LoadedRun(meta=r.meta, result=result, gate=r.gate))
    by_title = {s["title"]: s for s in series_of(with_server)}
    assert by_title["cache hit ratio: overview"]["values"] == pytest.approx([90, 89, 88])
    assert by_title["cache hit ratio: overview"]["unit"] == "%"
    retry = by_title["ElevenLabs retry rate (retries per attempt)"]["values"]
    assert retry[1] is None and retry[0] == retry[2] == pytest.approx(100 / 11)
    assert "ElevenLabs retry rate (retries per attempt)" not in {
        s["title"] for s in series_of(runs)}  # no upstream in any run: no series


def test_a_v1_record_is_a_run_of_the_history(store_dir, tmp_path):
    """A record from before windows existed (schema_version 1) is one more point."""
    root = Path(shutil.copytree(store_dir, tmp_path / "runs"))
    (root / "v1").mkdir()
    shutil.copy(FIXTURES / "result_v1.json", root / "v1" / "result.json")
    out = write_history(FolderStore(root), scenario="mixed", last=None, out=tmp_path / "h.html")
    runs = payload(out.read_text())["runs"]
    assert len(runs) == 11 and runs[0]["schema_version"] == 1 and runs[0]["href"] is None


def test_last_keeps_the_newest_runs(store_dir, tmp_path):
    out = write_history(FolderStore(store_dir), scenario="mixed", last=3,
                        out=tmp_path / "h.html")
    assert [r["run_id"][-3:] for r in payload(out.read_text())["runs"]] == ["r08", "r09", "r10"]


def test_one_run_renders_with_a_sentence(store_dir, tmp_path):
    out = write_history(FolderStore(store_dir), scenario="dashboard", last=None,
                        out=tmp_path / "one.html")
    assert "a trend needs at least two" in out.read_text()


def test_bad_requests_are_config_errors_and_write_nothing(store_dir, tmp_path):
    out = tmp_path / "never.html"
    with pytest.raises(ConfigError, match="no runs in the results store"):
        write_history(FolderStore(tmp_path / "empty"), scenario=None, last=None, out=out)
    with pytest.raises(ConfigError, match="no runs of scenario 'nope'"):
        write_history(FolderStore(store_dir), scenario="nope", last=None, out=out)
    with pytest.raises(ConfigError, match="at least 2"):
        write_history(FolderStore(store_dir), scenario=None, last=1, out=out)
    assert not out.exists()


def test_no_api_key_reaches_the_page(page):
    html = page.read_text()
    text = html + str(payload(html))
    assert not any(key in text for key in API_KEYS)


def test_a_postgres_store_writes_its_pages_beside_the_history(pg_url, store_dir, tmp_path):  # noqa: F811
    store = PostgresStore(pg_url)
    for d in sorted(store_dir.iterdir()):
        store.push(d)
    out = write_history(store, scenario="mixed", last=4, out=tmp_path / "site" / "h.html")
    runs = payload(out.read_text())["runs"]
    assert [r["href"] for r in runs] == [f"h-runs/{r['run_id']}.html" for r in runs]
    first = tmp_path / "site" / runs[0]["href"]
    assert first.read_text() == (store_dir / "r07" / "report.html").read_text()


# --- in Chromium ---------------------------------------------------------------------

needs_browser = pytest.mark.skipif(bool(SKIP_BROWSER), reason=SKIP_BROWSER or "-")


@needs_browser
def test_the_page_draws_offline_in_chromium(browser, page, tmp_path):
    seen = open_page(browser, page, tmp_path, "history")
    assert_clean(seen, page)
    assert seen["run_id"].endswith("r10")
    assert seen["placeholders"] == len(outline(page.read_text()).charts)


@needs_browser
def test_a_click_on_a_chart_opens_the_run_under_the_cursor(browser, page, store_dir):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, offline=True)
    try:
        tab = context.new_page()
        tab.goto(page.resolve().as_uri())
        tab.wait_for_selector("body[data-charts-drawn]")
        over = tab.locator(".chart[data-chart] .u-over").first
        box = over.bounding_box()
        legend = tab.locator(".chart[data-chart]").first.locator(".u-legend")
        tab.mouse.move(box["x"] + box["width"] - 2, box["y"] + box["height"] / 2)
        assert "#10 " in legend.inner_text() and "r10" in legend.inner_text()
        tab.mouse.click(box["x"] + box["width"] - 2, box["y"] + box["height"] / 2)
        tab.wait_for_url("**/report.html")
        assert tab.url == (store_dir / "r10" / "report.html").resolve().as_uri()
    finally:
        context.close()
