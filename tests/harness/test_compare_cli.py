"""`harness compare` on run directories built with known truth: outputs written, exit codes,
and every kind of bad input as one line and exit 2 with nothing written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from junitparser import JUnitXml

from tests.builders import EndpointSpec, LogNormal, build_run

OVERVIEW = "GET /api/v1/dashboard/overview"


def built(directory: Path, seed: int, median_ms: float = 20.0, seconds: int = 60) -> Path:
    run = build_run({OVERVIEW: EndpointSpec(rps=40, latency_ms=LogNormal(median_ms, 0.3))},
                    seconds=seconds, seed=seed, run_id=directory.name)
    return run.write(directory)


def compare(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", "compare", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture()
def runs(tmp_path: Path) -> tuple[Path, Path, Path]:
    base = built(tmp_path / "base", 1)
    same = built(tmp_path / "same", 2)
    slow = built(tmp_path / "slow", 3, median_ms=45.0)
    return base, same, slow


def test_a_regression_exits_1_and_writes_the_gate_files(tmp_path: Path, runs):
    base, _, slow = runs
    done = compare(str(slow), "--baseline", str(base), cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("gate:") and "Traceback" not in done.stderr
    gate = json.loads((slow / "gate.json").read_text())
    assert gate["verdict"] == "regressed"
    assert f"p95 {OVERVIEW}" in {c["name"] for c in gate["checks"] if c["verdict"] == "regressed"}
    assert next(iter(JUnitXml.fromfile(str(slow / "junit.xml")))).failures >= 1
    assert (slow / "summary.md").read_text().startswith("**REGRESSED**")


def test_the_same_build_exits_0(tmp_path: Path, runs):
    base, same, _ = runs
    done = compare(str(same), "--baseline", str(base), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads((same / "gate.json").read_text())["verdict"] in ("pass", "inconclusive")


def bad_input(tmp_path: Path, run: Path, *args: str) -> str:
    done = compare(str(run), *args, cwd=tmp_path)
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert "Traceback" not in done.stderr and len(lines) <= 2, done.stderr
    assert not (run / "gate.json").exists()  # nothing written
    return done.stderr


def test_a_truncated_result_is_exit_2(tmp_path: Path, runs):
    base, same, _ = runs
    text = (base / "result.json").read_text()
    (base / "result.json").write_text(text[: len(text) // 2])
    assert "not valid JSON" in bad_input(tmp_path, same, "--baseline", str(base))


def test_an_unknown_schema_version_is_exit_2(tmp_path: Path, runs):
    base, same, _ = runs
    doc = json.loads((base / "result.json").read_text())
    (base / "result.json").write_text(json.dumps(doc | {"schema_version": 9}))
    assert "unsupported schema_version 9" in bad_input(tmp_path, same, "--baseline", str(base))


def test_an_interval_log_that_does_not_decode_is_exit_2(tmp_path: Path, runs):
    base, same, _ = runs
    log = base / "windows.hlog"
    lines = log.read_text().splitlines(keepends=True)
    first = next(i for i, ln in enumerate(lines) if ln.startswith("Tag="))
    lines[first] = lines[first].rsplit(",", 1)[0] + ",HISTFAAAnotbase64!!\n"
    log.write_text("".join(lines))
    assert "windows.hlog" in bad_input(tmp_path, same, "--baseline", str(base))


def test_a_policy_that_does_not_parse_is_exit_2_naming_the_line(tmp_path: Path, runs):
    base, same, _ = runs
    policy = tmp_path / "policy.toml"
    policy.write_text("[tolerances]\np95 = \"+15%\"\np96 = \"+10%\"\n")
    err = bad_input(tmp_path, same, "--baseline", str(base), "--policy", str(policy))
    assert "policy.toml:3" in err and "p96" in err


def test_a_missing_baseline_is_exit_2(tmp_path: Path, runs):
    _, same, _ = runs
    assert "no baseline 'nope'" in bad_input(tmp_path, same, "--baseline", "nope",
                                             "--store", str(tmp_path / "store"))


def test_a_mismatched_comparison_is_refused_unless_allowed(tmp_path: Path, runs):
    base, _, _ = runs
    short = built(tmp_path / "short", 4, seconds=45)
    err = bad_input(tmp_path, short, "--baseline", str(base))
    assert "refusing to compare" in err and "duration" in err
    done = compare(str(short), "--baseline", str(base), "--allow-mismatch", cwd=tmp_path)
    assert done.returncode in (0, 1), done.stderr
    gate = json.loads((short / "gate.json").read_text())
    assert gate["allowed_mismatch"] and gate["mismatches"] == ["duration: 45.0 vs 60.0"]


def test_calibrate_reports_the_false_alarm_rate_and_writes_a_policy_that_parses(tmp_path: Path,
                                                                              runs):
    from harness.model.policy import load_policy

    base, same, _ = runs
    third = built(tmp_path / "third", 5)
    policy = tmp_path / "suggested.toml"
    done = subprocess.run([sys.executable, "-m", "harness.cli", "calibrate", str(base),
                           str(same), str(third), "--write-policy", str(policy)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "3 A/A pairs" in done.stdout and f"p95 {OVERVIEW}" in done.stdout
    suggested = load_policy(policy)  # strict: it must parse
    assert suggested.endpoints[OVERVIEW].p95 is not None
    few = subprocess.run([sys.executable, "-m", "harness.cli", "calibrate", str(base)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert few.returncode == 2 and "at least 2" in few.stderr
    many = subprocess.run([sys.executable, "-m", "harness.cli", "calibrate", "--runs", "1"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert many.returncode == 2 and "--runs must be at least 2" in many.stderr
