"""`harness ab` without a stack: specs, the interleaved order, git worktrees, the job
record, the paired gate over run directories built with known truth, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from junitparser import JUnitXml

from harness.errors import ConfigError, RunFailed, UsageError
from harness.model import policy as pol
from harness.model.ab import AbRecord
from harness.run import ab
from harness.run.config import RunConfig
from tests.builders import EndpointSpec, LogNormal, build_run

OVERVIEW = "GET /api/v1/dashboard/overview"


def test_specs_parse_into_profiles_toggles_and_refs():
    assert ab.parse_spec("profile:naive").profile == "naive"
    spec = ab.parse_spec("toggles:response_cache=false, auth_cache = ON")
    assert spec.kind == "toggles" and spec.toggles == {"response_cache": False,
                                                       "auth_cache": True}
    assert ab.parse_spec("ref:main~2").ref == "main~2"
    assert ab.parse_spec("trace:0.1").trace_sampling == 0.1
    assert ab.parse_spec("trace:off").trace_sampling is None


@pytest.mark.parametrize(("text", "says"), [
    ("naive", "malformed A/B spec"), ("profile:", "malformed"), ("branch:main", "malformed"),
    ("profile:fast", "unknown profile 'fast'"), ("toggles:no_such=true", "unknown toggle"),
    ("toggles:response_cache", "malformed toggle"),
    ("toggles:response_cache=maybe", "must be true or false"),
    ("trace:1.5", "from 0 to 1"), ("trace:often", "from 0 to 1"),
])
def test_a_bad_spec_is_a_usage_error_that_names_it(text: str, says: str):
    with pytest.raises(UsageError, match=says):
        ab.parse_spec(text)


def test_rounds_interleave_a_b_then_b_a():
    assert ab.order(1) == [(1, "A"), (1, "B")]
    assert [s for _, s in ab.order(3)] == list("ABBAAB")
    assert [r for r, _ in ab.order(2)] == [1, 1, 2, 2]
    with pytest.raises(UsageError):
        ab.order(0)


def test_toggles_reach_the_target_as_settings_over_the_profile(tmp_path: Path):
    config, commit = ab.configure(ab.parse_spec("toggles:response_cache=false"), RunConfig(),
                                  tmp_path)
    assert commit is None and config.profile == "optimized"
    assert config.stack.target_env["TARGET_TOGGLES__RESPONSE_CACHE"] == "false"
    from target_service.settings import Settings
    settings = Settings(profile="optimized", toggles={"response_cache": False})
    assert not settings.flags.response_cache and settings.flags.kpi_view
    naive, _ = ab.configure(ab.parse_spec("profile:naive"), RunConfig(), tmp_path)
    assert naive.profile == "naive" and naive.stack.target_source is None


def test_a_trace_side_runs_the_base_traced_at_its_sampling(tmp_path: Path):
    config, commit = ab.configure(ab.parse_spec("trace:0.1"), RunConfig(), tmp_path)
    assert commit is None and config.trace_sampling == 0.1 and config.profile == "optimized"
    assert config.tracing_env(tmp_path)["TARGET_TRACING__SAMPLING"] == "0.1"
    off, _ = ab.configure(ab.parse_spec("trace:off"), RunConfig(), tmp_path)
    assert off.trace_sampling is None and off.tracing_env(tmp_path) == {}
    specs = ab.parse_spec("profile:optimized"), ab.parse_spec("trace:0.1")
    assert ab.expected_differences(specs) == {"trace sampling"}
    assert ab.expected_differences((specs[0], ab.parse_spec("profile:naive"))) == set()


def test_runs_traced_differently_are_compared_only_when_tracing_is_the_question(
        tmp_path: Path):
    out = tmp_path / "reports"
    a, b = ab.parse_spec("profile:optimized"), ab.parse_spec("trace:0.1")
    job, record = ab.new_job(out, a, b, 1, (None, None))
    for n, r in enumerate(record.runs):
        run = build_run({OVERVIEW: EndpointSpec(rps=40, latency_ms=LogNormal(20.0, 0.3))},
                        seconds=60, seed=n, run_id=f"run{n}")
        run.result.run.trace_sampling = 0.1 if r.side == "B" else None
        run.write(out / "runs" / f"run{n}")
        r.run_id, r.status = f"run{n}", "complete"
    with pytest.raises(ConfigError, match="trace sampling"):
        ab.judge(record, out / "runs", job, pol.Policy(), False)
    outcome = ab.judge(record, out / "runs", job, pol.Policy(), False,
                       ab.expected_differences((a, b)))
    assert outcome.gate.mismatches == ["trace sampling: 0.1 vs None"]
    assert not outcome.gate.allowed_mismatch and outcome.gate.verdict != "regressed"


def test_a_ref_is_checked_out_once_into_a_worktree_and_reused(tmp_path: Path):
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ab.REPO, capture_output=True,
                          text=True, check=True).stdout.strip()
    try:
        path, commit = ab.worktree("HEAD", tmp_path)
        assert commit == head and path == (tmp_path / "worktrees" / head[:12]).resolve()
        assert (path / "target_service" / "__main__.py").is_file()
        again, _ = ab.worktree(head, tmp_path)
        assert again == path
        config, resolved = ab.configure(ab.parse_spec("ref:HEAD"), RunConfig(), tmp_path)
        assert config.stack.target_source == path and resolved == head
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tmp_path / "worktrees" /
                                                                     head[:12])],
                       cwd=ab.REPO, capture_output=True)
    with pytest.raises(UsageError, match="unknown git ref"):
        ab.worktree("no-such-ref-anywhere", tmp_path)


def built(runs_dir: Path, name: str, seed: int, median_ms: float) -> str:
    run = build_run({OVERVIEW: EndpointSpec(rps=40, latency_ms=LogNormal(median_ms, 0.3))},
                    seconds=60, seed=seed, run_id=name)
    run.write(runs_dir / name)
    return name


def test_the_job_record_plans_every_run_and_the_gate_pairs_complete_rounds(tmp_path: Path):
    out = tmp_path / "reports"
    job, record = ab.new_job(out, ab.parse_spec("profile:optimized"),
                             ab.parse_spec("toggles:response_cache=false"), 2, (None, None))
    planned = AbRecord.model_validate_json((job / ab.AB_FILE).read_text())
    assert [(r.round, r.side, r.status) for r in planned.runs] == [
        (1, "A", "planned"), (1, "B", "planned"), (2, "B", "planned"), (2, "A", "planned")]
    with pytest.raises(RunFailed, match="no complete round"):
        ab.judge(record, out / "runs", job, pol.Policy(), False)
    for n, r in enumerate(record.runs):
        r.run_id = built(out / "runs", f"run{n}", seed=n, median_ms=20.0 if r.side == "A"
                         else 40.0)
        r.status = "complete"
    outcome = ab.judge(record, out / "runs", job, pol.Policy(), False)
    assert outcome.gate.verdict == "regressed" and outcome.gate.exit_code == 1
    assert outcome.gate.baseline.run_ids == ["run0", "run3"]  # A of rounds 1 and 2
    assert outcome.gate.current.run_ids == ["run1", "run2"]
    saved = json.loads((job / "gate.json").read_text())
    assert saved["baseline"]["label"] == "A profile:optimized"
    assert saved["current"]["label"] == "B toggles:response_cache=false"
    assert next(iter(JUnitXml.fromfile(str(job / "junit.xml")))).failures >= 1
    assert (job / "summary.md").read_text().startswith("**REGRESSED**")
    rounds = AbRecord.model_validate_json((job / ab.AB_FILE).read_text()).round_changes
    assert len(rounds) == 2 and all(r[f"p95 {OVERVIEW}"] > 1.5 for r in rounds)


def test_an_unfinished_round_is_left_out_of_the_gate(tmp_path: Path):
    out = tmp_path / "reports"
    job, record = ab.new_job(out, ab.parse_spec("profile:optimized"),
                             ab.parse_spec("profile:naive"), 2, (None, None))
    for n, r in enumerate(record.runs[:3]):  # round 2's A never ran
        r.run_id, r.status = built(out / "runs", f"run{n}", n, 20.0), "complete"
    assert ab.judge(record, out / "runs", job, pol.Policy(), False).gate.baseline.run_ids == [
        "run0"]


def harness_ab(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", "ab", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(("args", "says"), [
    (("--a", "profile:optimized", "--b", "toggles:nope=true"), "unknown toggle"),
    (("--a", "profile:optimized", "--b", "profile:optimized"), "the same"),
    (("--a", "profile:optimized", "--b", "profile: optimized"), "the same"),
    (("--a", "profile:optimized", "--b", "ref:no-such-ref-anywhere"), "unknown git ref"),
    (("--a", "profile:optimized", "--b", "profile:naive", "--rounds", "0"), "--rounds"),
    (("--a", "profile:optimized", "--b", "profile:naive", "--dataset", "huge"), "dataset"),
    (("--a", "profile:optimized", "--b", "profile:naive", "--policy", "missing.toml"),
     "missing.toml"),
])
def test_bad_input_is_one_line_exit_2_and_starts_nothing(tmp_path: Path, args, says):
    done = harness_ab(*args, "--out", str(tmp_path / "reports"), "--state-dir",
                      str(tmp_path / "state"), cwd=tmp_path)
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and says in lines[0] and "Traceback" not in done.stderr
    assert not (tmp_path / "reports").exists() and not (tmp_path / "state").exists()
