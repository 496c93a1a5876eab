"""`harness report` on a real run: `harness run` on `tiny` (traced, so every section has
data), then the page, against the run itself as a one-run baseline; parsed, checked for
the dataset's API keys (the run directory's own `dataset.json`), and, when Chromium is
there, loaded offline with every chart drawn."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import state_dir  # noqa: F401 - the e2e state directory fixture
from tests.e2e.test_run import harness_run, only_result
from tests.report.conftest import SECTION_IDS, outline
from tests.report.test_render import payload, section

pytestmark = pytest.mark.e2e


def harness(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True,
                          text=True, timeout=120, check=False)


def test_the_report_of_a_real_traced_run(state_dir: Path, tmp_path: Path):  # noqa: F811
    out = tmp_path / "reports"
    proc = harness_run(state_dir, out, "--scenario", "mixed", "--users", "6", "--spawn-rate",
                       "6", "--duration", "12s", "--warmup", "3s", "--trace-sampling", "0.5")
    try:
        _, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    run_dir, result = only_result(out)
    keys = [u["api_key"] for u in json.loads((run_dir / "dataset.json").read_text())["users"]]
    assert keys

    done = harness("report", str(run_dir), "--baseline", str(run_dir))
    assert done.returncode == 0, done.stderr
    html = (run_dir / "report.html").read_text()
    assert outline(html).sections == SECTION_IDS
    assert len(html.encode()) < 2_000_000
    data = json.dumps(payload(html))
    assert not [k for k in keys if k in html or k in data]
    assert "state-none" not in section(html, "verdict")  # gated against itself
    assert "Slowest traces" in section(html, "traces")
    assert 'class="compact spans"' in section(html, "traces")  # expandable to their spans
    assert "not traced" not in section(html, "traces")
    assert "no server metrics" not in section(html, "caches")
    for key in result["endpoints"]:
        assert key in section(html, "endpoints")

    try:
        from tests.report.test_browser import CHROMIUM, assert_clean, open_page
    except pytest.skip.Exception:
        return  # playwright missing: the browser tests say so
    if CHROMIUM.exists():
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM),
                                        args=["--no-sandbox", "--disable-gpu"])
            try:
                page = run_dir / "report.html"
                assert_clean(open_page(browser, page, tmp_path, "report-e2e"), page)
            finally:
                browser.close()
