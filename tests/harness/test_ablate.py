"""`harness ablate` without a stack: the configurations, the rotating order, the job record,
the comparison and its Markdown over run directories built with known truth, and bad
input (one line, exit 2, nothing started or written)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.model.ablation import AblationRecord
from harness.outputs.ablation_markdown import ablation_markdown
from harness.run import ablate
from harness.run.config import RunConfig
from target_service.settings import Toggles
from tests.builders import EndpointSpec, LogNormal, build_run

OVERVIEW = "GET /api/v1/dashboard/overview"


def test_configurations_are_all_on_each_toggle_off_alone_and_all_off():
    configs = ablate.configurations()
    assert [c.name for c in configs] == ["all on", *(f"{t} off" for t in Toggles.model_fields),
                                         "all off"]
    assert configs[0].spec == "profile:optimized" and configs[-1].spec == "profile:naive"
    assert configs[1].spec == f"toggles:{next(iter(Toggles.model_fields))}=false"
    assert configs[-1].off == list(Toggles.model_fields)
    # a subset keeps the Toggles order; without all off
    some = ablate.configurations(["response_cache", "kpi_view"], all_off=False)
    assert [c.name for c in some] == ["all on", "kpi_view off", "response_cache off"]


@pytest.mark.parametrize(("toggles", "all_off", "says"), [
    (["no_such"], True, "unknown toggle 'no_such'"),
    (["kpi_view", "kpi_view"], True, "twice"),
    ([], False, "nothing to compare"),
])
def test_bad_configurations_are_usage_errors(toggles, all_off, says):
    with pytest.raises(UsageError, match=says):
        ablate.configurations(toggles, all_off)


def test_each_round_rotates_the_order_by_one_more_place():
    assert ablate.order(3, 3) == [(1, 0), (1, 1), (1, 2), (2, 1), (2, 2), (2, 0),
                                  (3, 2), (3, 0), (3, 1)]
    # over n rounds every configuration takes every position once
    n = 4
    plan = ablate.order(n, n)
    for i in range(n):
        assert {pos % n for pos, (_, c) in enumerate(plan) if c == i} == set(range(n))
    assert [c for _, c in ablate.order(2, 2)] == [0, 1, 1, 0]  # harness ab's A B, B A
    with pytest.raises(UsageError, match="--rounds"):
        ablate.order(3, 0)


def test_a_toggle_configuration_reaches_the_target_as_ab_configures_it(tmp_path: Path):
    off = ablate.configurations(["response_cache"])[1]
    config = ablate.configure(off, RunConfig(), tmp_path)
    assert config.stack.profile == "optimized"
    assert config.stack.target_env["TARGET_TOGGLES__RESPONSE_CACHE"] == "false"
    naive = ablate.configure(ablate.configurations([])[-1], RunConfig(), tmp_path)
    assert naive.stack.profile == "naive"


def built(runs_dir: Path, name: str, seed: int, median_ms: float) -> str:
    run = build_run({OVERVIEW: EndpointSpec(rps=40, latency_ms=LogNormal(median_ms, 0.3))},
                    seconds=60, seed=seed, run_id=name)
    run.write(runs_dir / name)
    return name


def test_the_job_record_and_its_comparison_over_built_runs(tmp_path: Path):
    out = tmp_path / "reports"
    configs = ablate.configurations(["response_cache", "kpi_view"])
    job, record = ablate.new_job(out, RunConfig(), configs, 2, "harness ablate --rounds 2")
    planned = AblationRecord.model_validate_json((job / "ablate.json").read_text())
    assert [(r.round, r.config) for r in planned.runs] == [
        (1, "all on"), (1, "kpi_view off"), (1, "response_cache off"), (1, "all off"),
        (2, "kpi_view off"), (2, "response_cache off"), (2, "all off"), (2, "all on")]
    assert all(r.status == "planned" for r in planned.runs)
    truth = {"all on": 20.0, "kpi_view off": 20.0, "response_cache off": 30.0, "all off": 60.0}
    for n, r in enumerate(record.runs[:-1]):  # round 2's all on never ran (Ctrl-C)
        r.run_id = built(out / "runs", f"run{n}", n, truth[r.config])
        r.status = "complete"
    written = ablate.analyse(record, out / "runs", job, resamples=300)
    assert written == [job / "ablate.json", job / "ablate.md"]
    saved = AblationRecord.model_validate_json((job / "ablate.json").read_text())
    p95 = {e.config: e for e in saved.effects if e.metric == "p95"}
    assert p95["response_cache off"].rounds == 1  # round 2 has no all on to pair with
    assert 1.3 < p95["response_cache off"].change < 1.7 and p95["response_cache off"].clear
    assert 2.5 < p95["all off"].change < 3.5
    assert p95["kpi_view off"].low < 1 < p95["kpi_view off"].high
    assert any("round(s) 2" in n for n in saved.notes) and saved.analysed_at
    assert "fewer than 5 rounds" in saved.method
    md = (job / "ablate.md").read_text()
    assert md == ablation_markdown(saved)
    assert "`harness ablate --rounds 2`" in md
    rows = {line.split(" | ")[0].lstrip("| "): line for line in md.splitlines()
            if line.startswith("| ")}
    assert {"all on (measured)", "kpi_view off", "response_cache off", "all off"} <= set(rows)
    assert "p95 GET /dashboard/overview" in rows["configuration"]
    assert " ms " in rows["all on (measured)"]
    assert "**+" in rows["all off"] and "**" not in rows["kpi_view off"]


def test_a_job_with_nothing_paired_yet_writes_a_table_that_says_so(tmp_path: Path):
    out = tmp_path / "reports"
    job, record = ablate.new_job(out, RunConfig(), ablate.configurations(["kpi_view"]), 1,
                                 "harness ablate")
    ablate.analyse(record, out / "runs", job)
    assert "No configuration was measured" in (job / "ablate.md").read_text()


def harness_ablate(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", "ablate", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize(("args", "says"), [
    (("--toggles", "nope"), "unknown toggle 'nope'"),
    (("--toggles", "kpi_view,kpi_view"), "twice"),
    (("--toggles", "", "--no-all-off"), "nothing to compare"),
    (("--rounds", "0"), "--rounds"),
    (("--dataset", "huge"), "dataset"),
    (("--scenario", "nope"), "unknown scenario"),
    (("--duration", "soon"), "duration"),
    (("--users", "0"), "--users"),
    (("--policy", "missing.toml"), "missing.toml"),
])
def test_bad_input_is_one_line_exit_2_and_starts_nothing(tmp_path: Path, args, says):
    done = harness_ablate(*args, "--out", str(tmp_path / "reports"), "--state-dir",
                          str(tmp_path / "state"), cwd=tmp_path)
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and says in lines[0] and "Traceback" not in done.stderr
    assert not (tmp_path / "reports").exists() and not (tmp_path / "state").exists()


def test_the_comparison_page_shows_every_configuration_then_all_off_against_all_on(
        tmp_path: Path):
    from harness.outputs.ablation_report import write_ablation_report

    out = tmp_path / "reports"
    configs = ablate.configurations(["response_cache"])
    job, record = ablate.new_job(out, RunConfig(), configs, 1, "harness ablate")
    for n, r in enumerate(record.runs):
        r.run_id = built(out / "runs", f"run{n}", n, 60.0 if r.config == "all off" else 20.0)
        r.status = "complete"
    ablate.analyse(record, out / "runs", job, resamples=200)
    page = write_ablation_report(record, out / "runs", job, tmp_path / "store")
    html = page.read_text()
    assert page == job / "report.html" and "<html" in html
    assert "profile:naive" in html and "profile:optimized" in html
    # every configuration in the table first (tests/harness/test_ablate_report.py reads
    # its numbers back), then the pair in full
    assert '<tr data-config="response_cache off">' in html
    assert '<tr data-config="all off">' in html
    assert html.index('id="configurations"') < html.index('id="verdict"')
    assert "B: all off (profile:naive)" in html


def test_ctrl_c_stops_the_job_and_compares_what_was_measured(tmp_path: Path, monkeypatch):
    """The CLI loop with the runner replaced: the third of eight runs is interrupted; the
    job stops there (Interrupted, exit 3 through `main`), the two complete runs are
    compared and both files written."""
    from typer.testing import CliRunner

    import harness.cli.run as cli_run
    from harness.cli import app
    from harness.errors import Interrupted
    from harness.model import result as results
    from harness.run import runner

    out = tmp_path / "reports"
    started: list[str] = []

    class FakeRun:
        def __init__(self, config, progress) -> None:
            self.config = config

        def execute(self) -> runner.RunOutcome:
            n = len(started)
            started.append(self.config.stack.target_env.get("TARGET_TOGGLES__KPI_VIEW", "on"))
            name = built(out / "runs", f"run{n}", n, 20.0 if n == 0 else 30.0)
            return runner.RunOutcome(out / "runs" / name,
                                     Interrupted("interrupted by SIGINT") if n == 2 else None)

    monkeypatch.setattr(runner, "Run", FakeRun)
    monkeypatch.setattr(cli_run, "_record",
                        lambda outcome: results.load(outcome.run_dir / "result.json"))
    done = CliRunner().invoke(app, ["ablate", "--toggles", "kpi_view,response_cache",
                                    "--rounds", "2", "--dataset", "tiny",
                                    "--out", str(out), "--state-dir", str(tmp_path / "s"),
                                    "--store", str(tmp_path / "store")])
    assert isinstance(done.exception, Interrupted), done.output
    assert started == ["on", "false", "on"]  # all on, kpi_view off, then response_cache off
    job = next((out / "ablate").iterdir())
    record = AblationRecord.model_validate_json((job / "ablate.json").read_text())
    assert [r.status for r in record.runs] == ["complete", "complete", "failed",
                                               *["planned"] * 5]
    assert {e.config for e in record.effects} == {"kpi_view off"}
    assert next(e for e in record.effects if e.metric == "p95").change > 1.2
    assert "kpi_view off" in (job / "ablate.md").read_text()
    # all off never ran: the page shows the configuration that did beside all on
    assert "toggles:kpi_view=false" in (job / "report.html").read_text()
