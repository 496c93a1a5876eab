"""The CI templates under ci/: they parse, the GitHub workflows pass actionlint, and they
hold what makes them work (a PostgreSQL service, the JUnit report, the fork-safe comment)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

CI = Path(__file__).resolve().parents[2] / "ci"
GITHUB = CI / "github" / "perf-gate.yml"
COMMENT = CI / "github" / "perf-gate-comment.yml"
GITLAB = CI / "gitlab" / "perf-gate.yml"
SCRIPT = CI / "perf-gate.sh"


def load(path: Path) -> dict:
    doc = yaml.safe_load(path.read_text())
    assert isinstance(doc, dict), path
    return doc


def triggers(doc: dict) -> dict:
    """A workflow's `on:` (YAML 1.1 reads the bare key `on` as True)."""
    on = doc.get("on", doc.get(True))
    return {on: None} if isinstance(on, str) else dict(on)


def steps(job: dict) -> list[dict]:
    return job.get("steps", [])


def uses(job: dict, action: str) -> list[dict]:
    return [s for s in steps(job) if s.get("uses", "").split("@")[0] == action]


def actionlint() -> str:
    found = shutil.which("actionlint", path=os.pathsep.join(
        [str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    if found is None:
        pytest.skip("no actionlint (pip install -e '.[test]' installs it)")
    return found


@pytest.mark.parametrize("path", [GITHUB, COMMENT, GITLAB],
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_the_templates_parse_as_yaml(path: Path):
    assert load(path)


def test_the_github_workflows_pass_actionlint():
    result = subprocess.run([actionlint(), "-no-color", str(GITHUB), str(COMMENT)],
                            check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_rejects_a_broken_workflow(tmp_path: Path):
    """The check above can fail: a workflow with an unknown context and a bad runner."""
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n"
                      "      - run: echo ${{ github.nope.sha }}\n        shell: nosuchshell\n")
    result = subprocess.run([actionlint(), "-no-color", str(broken)],
                            check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "broken.yml" in result.stdout, result.stdout


def test_the_github_gate_ab_tests_the_pr_against_its_base_with_postgres_and_artifacts():
    doc = load(GITHUB)
    assert "pull_request" in triggers(doc) and "pull_request_target" not in triggers(doc)
    assert "pull_request_target" not in GITHUB.read_text()
    ab = doc["jobs"]["ab"]
    assert ab["services"]["postgres"]["image"].startswith("postgres:")
    assert "localhost:5432" in doc["env"]["PERF_DATABASE_URL"]
    checkout = uses(ab, "actions/checkout")[0]
    assert checkout["with"]["fetch-depth"] == 0  # the base revision must be in the clone
    cache = uses(ab, "actions/cache")[0]["with"]
    assert cache["path"] == doc["env"]["PERF_VENV"]
    assert "hashFiles('pyproject.toml')" in cache["key"]
    gate = next(s for s in steps(ab) if "ci/perf-gate.sh" in s.get("run", ""))
    assert gate["env"] == {"PERF_MODE": "ab",
                           "PERF_BASE_REF": "${{ github.event.pull_request.base.sha }}"}
    after = steps(ab)[steps(ab).index(gate) + 1:]
    assert all(s.get("if") == "always()" for s in after)  # a failed gate still reports
    assert any('>> "$GITHUB_STEP_SUMMARY"' in s.get("run", "") and "summary.md" in s["run"]
               for s in after)
    uploads = {s["with"]["name"]: s["with"]["path"] for s in uses(ab, "actions/upload-artifact")}
    assert uploads["perf-gate"].rstrip("/") == doc["env"]["PERF_ARTIFACTS"]
    assert "perf-gate-comment" in uploads


def test_the_scheduled_aa_job_gates_the_revision_against_itself_and_keeps_verdicts():
    doc = load(GITHUB)
    crons = [c["cron"] for c in triggers(doc)["schedule"]]
    assert crons and all(len(c.split()) == 5 for c in crons)
    aa = doc["jobs"]["aa"]
    assert "schedule" in aa["if"] and "pull_request" not in aa["if"]
    assert aa["services"]["postgres"]["image"].startswith("postgres:")
    gate = next(s for s in steps(aa) if "ci/perf-gate.sh" in s.get("run", ""))
    assert gate["env"] == {"PERF_MODE": "ab", "PERF_BASE_REF": "HEAD"}
    kept = {s["with"]["name"]: s["with"].get("retention-days", 0)
            for s in uses(aa, "actions/upload-artifact")}
    assert kept.get("perf-aa-verdict", 0) >= 30 and kept.get("perf-aa", 0) >= 30
    tally = next(s for s in steps(aa) if "perf-aa-verdict" in s.get("run", ""))
    assert "GITHUB_STEP_SUMMARY" in tally["run"] and aa["permissions"]["actions"] == "read"


def test_the_pr_comment_is_a_separate_workflow_run_that_never_runs_the_prs_code():
    gate, doc = load(GITHUB), load(COMMENT)
    on = triggers(doc)
    assert list(on) == ["workflow_run"]
    assert on["workflow_run"]["workflows"] == [gate["name"]]
    assert on["workflow_run"]["types"] == ["completed"]
    assert doc["permissions"] == {}
    (job,) = doc["jobs"].values()
    assert job["permissions"] == {"actions": "read", "pull-requests": "write"}
    assert "workflow_run.event == 'pull_request'" in job["if"]
    assert not uses(job, "actions/checkout") and not any("run" in s for s in steps(job))
    download = uses(job, "actions/download-artifact")[0]["with"]
    assert download["name"] == "perf-gate-comment"
    assert download["run-id"] == "${{ github.event.workflow_run.id }}"
    script = uses(job, "actions/github-script")[0]["with"]["script"]
    assert "pr.head.sha !== run.head_sha" in script and "/^[0-9]{1,10}$/" in script


def gitlab_job(doc: dict, name: str) -> dict:
    """A GitLab job with its `extends:` merged in (deep for maps, as GitLab does)."""
    def merge(base: dict, over: dict) -> dict:
        out = dict(base)
        for k, v in over.items():
            out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
        return out
    job = doc[name]
    parent = job.get("extends")
    return merge(gitlab_job(doc, parent), job) if parent else job


def test_the_gitlab_gate_has_postgres_the_junit_report_and_artifacts():
    doc = load(GITLAB)
    for name in ("perf-gate", "perf-aa"):
        job = gitlab_job(doc, name)
        (service,) = job["services"]
        assert service["name"].startswith("postgres:")
        host = re.search(r"@([^:/]+)", job["variables"]["PERF_DATABASE_URL"]).group(1)
        assert host == service["alias"]
        artifacts = job["artifacts"]
        assert artifacts["when"] == "always"
        assert artifacts["reports"]["junit"] == f"{job['variables']['PERF_ARTIFACTS']}/junit.xml"
        assert f"{job['variables']['PERF_ARTIFACTS']}/" in artifacts["paths"]
        assert job["cache"]["key"]["files"] == ["pyproject.toml"]
        assert job["variables"]["GIT_DEPTH"] == "0"
        assert any("ci/perf-gate.sh" in line for line in job["script"])
    mr = gitlab_job(doc, "perf-gate")
    assert mr["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}]
    assert "CI_MERGE_REQUEST_DIFF_BASE_SHA" in " ".join(mr["script"])
    aa = gitlab_job(doc, "perf-aa")
    assert "schedule" in aa["rules"][0]["if"] and aa["variables"]["PERF_BASE_REF"] == "HEAD"


def documented_knobs() -> set[str]:
    header = SCRIPT.read_text().split("set -euo pipefail")[0]
    return set(re.findall(r"^#\s+(PERF_[A-Z_]+)\s", header, re.MULTILINE))


def test_every_knob_the_script_reads_is_documented_and_the_templates_use_only_those():
    body = SCRIPT.read_text().split("set -euo pipefail", 1)[1]
    read = set(re.findall(r"\$\{(PERF_[A-Z_]+)", body))
    assert read and read == documented_knobs()
    used = set()
    for doc in (load(GITHUB), load(GITLAB)):
        text = yaml.safe_dump(doc)
        used |= set(re.findall(r"\b(PERF_[A-Z_]+)\s*[:=]", text))
    used.discard("PERF_AA")  # the GitLab schedule's switch, not a knob of the script
    assert used and used <= documented_knobs(), used - documented_knobs()
