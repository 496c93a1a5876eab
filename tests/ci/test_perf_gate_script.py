"""`ci/perf-gate.sh` end to end on `tiny`, against the embedded PostgreSQL (or the one in
HARNESS_TEST_DATABASE_URL), with the project already installed (PERF_INSTALL=0).

Three script runs in all, a few seconds of load each: an A/A job (`harness ab`, HEAD
against this checkout, one round) under a policy that fails an inconclusive gate
(exit 1), then the same build gated against a baseline saved from that job's first run
(exit 0), and bad knobs (exit 2, one line, before anything runs)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from junitparser import JUnitXml

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "ci" / "perf-gate.sh"
LOAD = {"PERF_SCENARIO": "dashboard", "PERF_DATASET": "tiny", "PERF_USERS": "5",
        "PERF_SPAWN_RATE": "5", "PERF_DURATION": "4s", "PERF_WARMUP": "1s"}
AB_HEAD = {"PERF_MODE": "ab", "PERF_BASE_REF": "HEAD"}  # knobs whose checks pass


@dataclass
class Done:
    code: int
    stdout: str
    stderr: str
    artifacts: Path

    def json(self, name: str) -> dict:
        return json.loads((self.artifacts / name).read_text())


def script(root: Path, name: str, timeout: float = 150, **knobs: str) -> Done:
    """The script with the project's interpreter, state under `root`, artifacts in
    `root/name`; its whole process group is killed if it overruns."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PERF_") and k != "HARNESS_DATABASE_URL"}
    env |= {"PERF_INSTALL": "0", "PERF_PYTHON": sys.executable,
            "PERF_STATE_DIR": str(root / "state"), "PERF_STORE": str(root / "store"),
            "PERF_ARTIFACTS": str(root / name), **LOAD, **knobs}
    if os.environ.get("HARNESS_TEST_DATABASE_URL"):
        env.setdefault("PERF_DATABASE_URL", os.environ["HARNESS_TEST_DATABASE_URL"])
    proc = subprocess.Popen(["bash", str(SCRIPT)], cwd=root, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return Done(proc.returncode, out, err, root / name)


@pytest.fixture(scope="module")
def root() -> Iterator[Path]:
    """Outside pytest's tmp_path (see tests/e2e/conftest.py: the embedded server's user)."""
    path = Path(tempfile.mkdtemp(prefix="harness-ci-"))
    (path / "store").mkdir()
    yield path
    for tree in (path / "state" / "worktrees").glob("*"):
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO,
                       check=False, capture_output=True, timeout=60)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def aa(root: Path) -> Done:
    """An A/A job whose gate must fail: a few seconds decide nothing (inconclusive), and
    this policy fails an inconclusive gate."""
    strict = root / "strict.toml"
    strict.write_text('[gate]\ninconclusive = "fail"\n')
    return script(root, "aa", PERF_MODE="ab", PERF_BASE_REF="HEAD", PERF_ROUNDS="1",
                  PERF_POLICY=str(strict))


@pytest.fixture(scope="module")
def gated(root: Path, aa: Done) -> Done:
    """This checkout gated against a baseline saved from the A/A job's first run."""
    first = aa.json("ab.json")["runs"][0]["run_id"]
    saved = subprocess.run(
        [sys.executable, "-m", "harness.cli", "baseline", "save",
         str(aa.artifacts / "reports" / "runs" / first), "--name", "smoke",
         "--store", str(root / "store"), "--out", str(aa.artifacts / "reports")],
        cwd=root, capture_output=True, text=True, timeout=120, check=False)
    assert saved.returncode == 0, saved.stderr
    return script(root, "gated", PERF_MODE="baseline", PERF_BASELINE="smoke")


def test_a_failing_ab_gate_exits_1_with_its_report_junit_and_summary(aa: Done):
    assert aa.code == 1, aa.stderr[-3000:]
    assert "Traceback" not in aa.stdout + aa.stderr
    gate = aa.json("gate.json")
    assert (gate["verdict"], gate["exit_code"], gate["inconclusive_fails"]) == (
        "inconclusive", 1, True)
    record = aa.json("ab.json")
    assert record["a"] == "ref:HEAD" and record["rounds"] == 1
    assert [r["status"] for r in record["runs"]] == ["complete", "complete"]
    suite = next(iter(JUnitXml.fromfile(str(aa.artifacts / "junit.xml"))))
    assert suite.tests > 0 and suite.failures > 0
    assert (aa.artifacts / "summary.md").read_text().startswith("**INCONCLUSIVE**")
    assert (aa.artifacts / "report.html").stat().st_size > 10_000
    assert (aa.artifacts / "exit_code").read_text().strip() == "1"
    assert "gate: inconclusive (exit 1)" in (aa.artifacts / "harness.log").read_text()
    assert aa.stderr.strip().splitlines()[-1].startswith("perf-gate: exit 1; artifacts in")


def test_the_same_build_against_its_baseline_passes_with_exit_0(gated: Done, aa: Done):
    assert gated.code == 0, gated.stderr[-3000:]
    gate = gated.json("gate.json")
    assert gate["verdict"] in ("pass", "inconclusive") and gate["exit_code"] == 0
    assert gate["baseline"]["label"] == "baseline smoke"
    assert gate["baseline"]["run_ids"] == [aa.json("ab.json")["runs"][0]["run_id"]]
    assert not [c for c in gate["checks"] if c["verdict"] == "regressed" and not c["advisory"]]
    suite = next(iter(JUnitXml.fromfile(str(gated.artifacts / "junit.xml"))))
    assert suite.tests > 0 and suite.failures == 0 and suite.errors == 0
    assert "does not fail CI" in (gated.artifacts / "summary.md").read_text()
    assert (gated.artifacts / "report.html").is_file()
    assert (gated.artifacts / "exit_code").read_text().strip() == "0"
    runs = list((gated.artifacts / "reports" / "runs").iterdir())
    assert len(runs) == 1 and (runs[0] / "result.json").is_file()


@pytest.mark.parametrize(("knobs", "says"), [
    ({"PERF_USERS": "lots"}, "PERF_USERS must be a whole number >= 1, not 'lots'"),
    ({"PERF_MODE": "nightly"}, "PERF_MODE must be one of: baseline ab; not 'nightly'"),
    ({"PERF_DURATION": "5 minutes"}, "PERF_DURATION must be a duration"),
    ({"PERF_BASELINE": "nosuch"}, "PERF_BASELINE: no baseline 'nosuch' in"),
    ({"PERF_MODE": "ab", "PERF_BASE_REF": "no-such-ref"}, "PERF_BASE_REF: 'no-such-ref' is not"),
    ({"PERF_DATABASE_URL": "mysql://u:secret@h/db"}, "PERF_DATABASE_URL must be a postgresql"),
    ({"PERF_PYTHON": "no-such-python", **AB_HEAD}, "PERF_PYTHON: no interpreter 'no-such-python'"),
    ({"PERF_PYTHON": "false", **AB_HEAD}, "PERF_PYTHON: 'false' cannot import the harness"),
], ids=["users", "mode", "duration", "baseline", "base-ref", "database-url", "no-python",
        "python-without-harness"])
def test_a_bad_knob_is_one_line_and_exit_2_before_anything_runs(root: Path, knobs, says):
    done = script(root, "bad", timeout=30, **knobs)
    assert done.code == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith(f"perf-gate: {says}"), \
        done.stderr
    assert "secret" not in done.stderr
    assert not done.artifacts.exists()


def test_a_refused_comparison_exits_2_and_the_summary_says_no_verdict(root: Path, gated: Done):
    """A run of another length than its baseline is measured, then refused (exit 2):
    no gate.json, and the summary CI shows says so before the run's own figures."""
    done = script(root, "refused", PERF_MODE="baseline", PERF_BASELINE="smoke",
                  PERF_DURATION="5s")
    assert done.code == 2, done.stderr[-3000:]
    assert "refusing to compare runs that differ in duration" in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert not (done.artifacts / "gate.json").exists()
    summary = (done.artifacts / "summary.md").read_text()
    assert summary.startswith("**PERF GATE NOT DECIDED** (exit 2)") and "## Run `" in summary
    assert (done.artifacts / "exit_code").read_text().strip() == "2"
