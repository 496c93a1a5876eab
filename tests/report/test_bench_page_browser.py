"""The benchmark page in a real headless Chromium (the run report's browser helpers): it
loads offline with no console error and no request but its own, every chart draws, and the
session axis reads in sessions."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.outputs.report.bench_page import BenchInputs, write_bench
from tests.report.test_bench_page import bench_set, compared  # noqa: F401 - a fixture
from tests.report.test_browser import CHROMIUM, assert_clean, browser, open_page  # noqa: F401

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)")


def test_the_compared_bench_page_draws_offline(browser, compared, tmp_path: Path):  # noqa: F811
    page = write_bench(compared, tmp_path / "bench.html")
    seen = open_page(browser, page, tmp_path, "bench-compared")
    assert_clean(seen, page)
    assert seen["run_id"] == "20261201T100000Z"  # the embedded data decoded in the page
    assert seen["placeholders"] == 6


def test_a_bench_page_alone_draws_offline_with_a_session_axis(browser, tmp_path: Path):  # noqa: F811
    page = write_bench(BenchInputs(current=bench_set(4, 3), run_id="alone"),
                       tmp_path / "bench.html")
    seen = open_page(browser, page, tmp_path, "bench-alone")
    assert_clean(seen, page)
    context = browser.new_context(offline=True)
    try:
        tab = context.new_page()
        tab.goto(page.resolve().as_uri())
        tab.wait_for_selector("body[data-charts-drawn]")
        first = tab.locator(".chart[data-chart] .u-legend .u-series:first-child .u-label")
        assert first.first.text_content() == "session"
        tab.locator(".chart[data-chart] .u-over").first.hover()  # the cursor on a session
        value = tab.locator(".chart[data-chart] .u-legend .u-series:first-child .u-value")
        assert value.first.text_content().startswith("session ")
    finally:
        context.close()
