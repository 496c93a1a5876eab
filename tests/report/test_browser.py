"""The page in a real headless Chromium (Debian's `chromium`, driven by Playwright): it loads
with no console error and no network request, every chart draws, a screenshot is kept.

Playwright's own browsers are never downloaded: the test launches `/usr/bin/chromium`
(`.ci/run` installs Debian's package when missing) and skips, saying why, without it.
Every request other than the page's own file is aborted and fails the test. Screenshots
go to the test's tmp dir, and to `$HARNESS_TEST_ARTIFACTS/report/` when that is set.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from harness.outputs.report import write_report
from harness.outputs.report.comparison import write_compare
from tests.builders import EndpointSpec, LogNormal
from tests.report.conftest import FIXTURES, make_run
from tests.report.test_render import section

CHROMIUM = Path(os.environ.get("HARNESS_CHROMIUM", "/usr/bin/chromium"))
sync_api = pytest.importorskip("playwright.sync_api",
                               reason="playwright is not installed (pip install -e '.[test]')")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)")

# Per chart canvas: how many pixels are clearly coloured (series strokes; axes are grey).
COLOURED_PIXELS = """() => Array.from(document.querySelectorAll('.chart[data-chart]')).map(el => {
  const canvas = el.querySelector('canvas');
  if (!canvas) return [el.dataset.chart, -1];
  const d = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i + 3] > 0 && Math.max(d[i], d[i + 1], d[i + 2]) - Math.min(d[i], d[i + 1], d[i + 2]) > 60) n++;
  }
  return [el.dataset.chart, n];
})"""


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM),
                              args=["--no-sandbox", "--disable-gpu"])
        try:
            yield b
        finally:
            b.close()


def artifacts(tmp_path: Path) -> list[Path]:
    dirs = [tmp_path]
    if os.environ.get("HARNESS_TEST_ARTIFACTS"):
        dirs.append(Path(os.environ["HARNESS_TEST_ARTIFACTS"]) / "report")
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
    return dirs


def open_page(browser, page_path: Path, tmp_path: Path, name: str) -> dict:
    """Load the page offline; return what it did (errors, requests, charts)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, offline=True)
    page = context.new_page()
    errors: list[str] = []
    requests: list[str] = []
    blocked: list[str] = []
    url = page_path.resolve().as_uri()
    page.on("console", lambda m: errors.append(m.text) if m.type in ("error", "warning")
            else None)
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    page.on("request", lambda r: requests.append(r.url))

    def route(r):
        if r.request.url == url:
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    try:
        page.goto(url)
        page.wait_for_selector("body[data-charts-drawn]", timeout=15_000)
        drawn = page.evaluate("document.body.dataset")
        placeholders = page.locator(".chart[data-chart]").count()
        coloured = page.evaluate(COLOURED_PIXELS)
        has_data = page.evaluate("typeof window.reportData === 'object' && "
                                 "window.reportData.current.record.run.run_id")
        shots = []
        for d in artifacts(tmp_path):
            shot = d / f"{name}.png"
            page.screenshot(path=str(shot), full_page=True)
            shots.append(shot)
        page.emulate_media(media="print")
        pdf = page.pdf(format="A4")
    finally:
        context.close()
    return {"errors": errors, "requests": requests, "blocked": blocked, "drawn": drawn,
            "placeholders": placeholders, "coloured": coloured, "run_id": has_data,
            "shots": shots, "pdf": pdf}


def assert_clean(seen: dict, page_path: Path) -> None:
    assert seen["errors"] == []
    assert seen["blocked"] == [] and seen["requests"] == [page_path.resolve().as_uri()]
    assert seen["drawn"]["chartsFailed"] == "0"
    assert int(seen["drawn"]["chartsDrawn"]) == seen["placeholders"] > 0
    blank = [cid for cid, n in seen["coloured"] if n < 5]  # one isolated point is ~25
    assert blank == [], f"charts without a drawn series: {blank}"
    assert all(s.stat().st_size > 10_000 for s in seen["shots"])
    assert seen["pdf"][:4] == b"%PDF"


def test_the_page_against_a_baseline_draws_offline(browser, runs, tmp_path):
    page = write_report(runs["current"], baseline=runs["baseline"], out=tmp_path / "r.html")
    seen = open_page(browser, page, tmp_path, "report-with-baseline")
    assert_clean(seen, page)
    assert seen["run_id"] == "cur-1"  # the embedded data decoded in the page
    assert seen["placeholders"] >= 10


def test_the_compare_page_of_two_runs_draws_offline(browser, runs, tmp_path):
    page = write_compare([str(runs["baseline"]), str(runs["current"])],
                         output=tmp_path / "compare.html")
    seen = open_page(browser, page, tmp_path, "compare-two-runs")
    assert_clean(seen, page)
    assert seen["run_id"] == "cur-1"  # B's data decoded in the page
    assert seen["placeholders"] >= 10


def test_the_compare_page_of_an_ab_job_draws_offline(browser, ab_job, tmp_path):
    page = write_compare([str(ab_job)], out=ab_job.parent.parent,
                         output=tmp_path / "job.html")
    seen = open_page(browser, page, tmp_path, "compare-ab-job")
    assert_clean(seen, page)
    assert seen["run_id"] == "b1"
    rounds = section(page.read_text(), "rounds")
    chart_id = rounds.split('data-chart="', 1)[1].split('"', 1)[0]
    assert dict(seen["coloured"])[chart_id] >= 5  # the per-round chart drew its lines


def test_a_run_alone_draws_offline(browser, runs, tmp_path):
    page = write_report(runs["current"], out=tmp_path / "alone.html")
    assert_clean(open_page(browser, page, tmp_path, "report-no-baseline"), page)


def test_a_failing_run_draws_offline(browser, tmp_path):
    run = make_run(tmp_path / "failing", {
        "GET /api/v1/agents": EndpointSpec(rps=5, latency_ms=LogNormal(5),
                                           failures={"http_500": 1.0}),
        "GET /api/v1/activity": EndpointSpec(rps=0)}, seed=3)
    page = write_report(run)
    assert_clean(open_page(browser, page, tmp_path, "report-only-failures"), page)


def test_a_v1_record_loads_without_errors(browser, tmp_path):
    run = tmp_path / "v1"
    run.mkdir()
    shutil.copy(FIXTURES / "result_v1.json", run / "result.json")
    page = write_report(run)
    seen = open_page(browser, page, tmp_path, "report-v1")
    assert seen["errors"] == [] and seen["blocked"] == []
    assert seen["drawn"]["chartsFailed"] == "0"


def test_the_endpoints_table_sorts_by_value(browser, runs, tmp_path):
    page_path = write_report(runs["current"], out=tmp_path / "sort.html")
    context = browser.new_context(offline=True)
    try:
        page = context.new_page()
        page.goto(page_path.resolve().as_uri())
        page.wait_for_selector("body[data-charts-drawn]")
        rows = "Array.from(document.querySelectorAll('table.endpoints tbody tr'))" \
               ".map(r => r.cells[1].getAttribute('data-sort'))"
        header = page.locator("table.endpoints thead th", has_text="requests")
        header.click()
        up = [float(v) for v in page.evaluate(rows)]
        header.click()
        down = [float(v) for v in page.evaluate(rows)]
        assert up == sorted(up) and down == sorted(down, reverse=True) and up != down
        assert header.get_attribute("aria-sort") == "descending"
    finally:
        context.close()


def test_without_decompression_stream_the_charts_say_why(browser, runs, tmp_path):
    page_path = write_report(runs["current"], out=tmp_path / "old.html")
    context = browser.new_context(offline=True)
    try:
        page = context.new_page()
        page.add_init_script("delete window.DecompressionStream")
        page.goto(page_path.resolve().as_uri())
        page.wait_for_selector("body[data-charts-failed='all']")
        charts = page.locator(".chart[data-chart]")
        assert charts.count() > 0
        assert page.locator(".chart.chart-error").count() == charts.count()
        assert "could not decode" in charts.first.inner_text()
        assert page.locator("table.endpoints tbody tr").count() >= 2  # the figures remain
    finally:
        context.close()
