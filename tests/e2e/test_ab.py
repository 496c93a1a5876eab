"""`harness ab` for real on `tiny`: a toggle that turns the response cache off is flagged on
the overview, paired over two interleaved rounds, and the compare page that job writes into
its directory (one job, two tests: it is the longest in the suite); a git ref runs its own
checkout."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from junitparser import JUnitXml

from harness.model.ab import AbRecord
from harness.run.ab import REPO
from tests.report.conftest import COMPARE_SECTION_IDS, outline
from tests.report.test_render import payload, section

pytestmark = pytest.mark.e2e
OVERVIEW = "GET /api/v1/dashboard/overview"
LOAD = ("--dataset", "tiny", "--scenario", "dashboard", "--users", "10", "--spawn-rate", "10",
        "--warmup", "3s")
# The committed policy but for this: 2 s blocks (one scrape row of the server's series)
# instead of 5 s, so 2 rounds x 20 s = 20 blocks a side, above the 8 the gate judges on
# (at 5 s blocks that took 2 rounds x 30 s). Shorter blocks only narrow the intervals.
POLICY_CHANGE = ("block_s = 5", "block_s = 2")


def harness_ab(state_dir: Path, out: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", "ab", *args, *LOAD,
                           "--out", str(out), "--state-dir", str(state_dir)],
                          capture_output=True, text=True, timeout=900)


def job_dir(out: Path) -> Path:
    return max((out / "ab").iterdir())


def harness(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True,
                          text=True, timeout=timeout, check=False)


@dataclass
class Job:
    done: subprocess.CompletedProcess
    out: Path
    job: Path


@pytest.fixture(scope="module")
def cache_off_job(state_dir: Path, tmp_path_factory) -> Job:
    """`harness ab` A: the optimized profile, B: the same with the response cache off, two
    rounds; run once for the module (its two tests read different outputs of it)."""
    root = tmp_path_factory.mktemp("ab-cache-off")
    out, policy = root / "reports", root / "policy.toml"
    committed = (REPO / "baselines" / "policy.toml").read_text()
    assert POLICY_CHANGE[0] in committed
    policy.write_text(committed.replace(*POLICY_CHANGE))
    done = harness_ab(state_dir, out, "--a", "profile:optimized",
                      "--b", "toggles:response_cache=false", "--rounds", "2",
                      "--duration", "20s", "--policy", str(policy))
    return Job(done, out, job_dir(out) if (out / "ab").is_dir() else out / "ab")


def test_turning_the_response_cache_off_flags_the_overview(cache_off_job: Job):
    done, out, job = cache_off_job.done, cache_off_job.out, cache_off_job.job
    assert done.returncode == 1, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "gate: regressed" in done.stderr
    record = AbRecord.model_validate_json((job / "ab.json").read_text())
    assert [(r.round, r.side, r.status) for r in record.runs] == [
        (1, "A", "complete"), (1, "B", "complete"), (2, "B", "complete"), (2, "A", "complete")]
    gate = json.loads((job / "gate.json").read_text())
    assert gate["verdict"] == "regressed" and "paired by round over 2" in gate["method"]
    regressed = {c["name"] for c in gate["checks"] if c["verdict"] == "regressed"}
    assert regressed & {f"p50 {OVERVIEW}", f"p95 {OVERVIEW}"}, regressed
    assert gate["baseline"]["toggles"] == {"response_cache": True}
    assert gate["current"]["toggles"] == {"response_cache": False}
    for r in record.runs:  # the B runs really ran without the cache
        target = json.loads((out / "runs" / r.run_id / "result.json").read_text())["run"][
            "target"]
        assert target["toggles"]["response_cache"] is (r.side == "A")
    assert len(record.round_changes) == 2
    assert all(rc[f"p50 {OVERVIEW}"] > 1.15 for rc in record.round_changes)
    assert next(iter(JUnitXml.fromfile(str(job / "junit.xml")))).failures >= 1


def test_the_page_of_a_real_ab_job(cache_off_job: Job, tmp_path: Path):
    """The compare page the job writes into its directory (whatever the gate said),
    parsed, checked for the dataset's API keys and, when Chromium is there, loaded offline
    with every chart drawn; then `harness report --compare` on two of its runs, unpaired."""
    done, out, job = cache_off_job.done, cache_off_job.out, cache_off_job.job
    assert done.returncode in (0, 1), done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "no report" not in done.stderr
    page = job / "report.html"
    assert f"report: {page}" in done.stderr
    html = page.read_text()
    assert outline(html).sections == COMPARE_SECTION_IDS
    assert len(html.encode()) < 2_000_000
    record = AbRecord.model_validate_json((job / "ab.json").read_text())
    data = payload(html)
    assert data["comparison"]["paired"] is True
    assert [s["record"]["run"]["run_id"] for s in data["baseline"]] == \
        [r.run_id for r in sorted(record.runs, key=lambda r: r.round) if r.side == "A"]
    assert "Paired verdicts" in section(html, "gate")
    assert "round 2" in section(html, "rounds")
    keys = {u["api_key"] for r in record.runs for u in json.loads(
        (out / "runs" / r.run_id / "dataset.json").read_text())["users"]}
    assert keys and not [k for k in keys if k in html or k in json.dumps(data)]

    a, b = (next(r.run_id for r in record.runs if r.side == s) for s in "AB")
    two = harness("report", "--compare", a, b, "--out", str(out))
    assert two.returncode == 0, two.stderr
    unpaired = (out / "compare" / f"{a}-vs-{b}.html").read_text()
    assert "one run a side" in section(unpaired, "verdict")

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
                assert_clean(open_page(browser, page, tmp_path, "compare-e2e"), page)
            finally:
                browser.close()


def test_a_git_ref_runs_from_its_own_worktree(state_dir: Path, tmp_path: Path):
    out = tmp_path / "reports"
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True,
                          text=True, check=True).stdout.strip()
    try:
        done = harness_ab(state_dir, out, "--a", "profile:optimized", "--b", "ref:HEAD",
                          "--rounds", "1", "--duration", "4s", "--users", "4")
        assert done.returncode in (0, 1), done.stderr[-3000:]  # 4 s cannot be judged well
        assert "Traceback" not in done.stderr
        record = AbRecord.model_validate_json((job_dir(out) / "ab.json").read_text())
        assert record.b_commit == head and record.a_commit is None
        b_run = out / "runs" / next(r.run_id for r in record.runs if r.side == "B")
        assert json.loads((b_run / "run.json").read_text())["git_commit"] == head
        assert (b_run / "logs" / "migrate.log").read_text().startswith("applied")
        assert (state_dir / "worktrees" / head[:12] / "target_service").is_dir()
    finally:
        subprocess.run(["git", "worktree", "remove", "--force",
                        str(state_dir / "worktrees" / head[:12])], cwd=REPO,
                       capture_output=True)
