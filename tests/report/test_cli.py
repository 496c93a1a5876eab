"""`harness report` as a user types it: the page written where asked, bad input exit 2 with
one line and nothing written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness import cli
from tests.conftest import harness_cli
from tests.report.conftest import SECTION_IDS, outline

harness = harness_cli


def test_report_writes_the_page_into_the_run(monkeypatch, capsys, run_copy, runs):
    code = harness(monkeypatch, "report", str(run_copy), "--baseline", str(runs["baseline"]))
    assert code == 0, capsys.readouterr().err
    page = run_copy / "report.html"
    assert outline(page.read_text()).sections == SECTION_IDS
    assert f"report: {page}" in capsys.readouterr().out


def test_report_by_id_from_out_to_a_chosen_file(monkeypatch, capsys, run_copy, tmp_path):
    out = tmp_path / "reports"
    (out / "runs").mkdir(parents=True)
    run_copy.rename(out / "runs" / "cur-1")
    target = tmp_path / "elsewhere" / "page.html"
    code = harness(monkeypatch, "report", "cur-1", "--out", str(out), "-o", str(target))
    assert code == 0, capsys.readouterr().err
    assert target.is_file() and not (out / "runs" / "cur-1" / "report.html").exists()


def one_line_exit_2(monkeypatch, capsys, *args: str) -> str:
    code = harness(monkeypatch, "report", *args)
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(err) == 1, err
    return err[0]


def test_no_such_run(monkeypatch, capsys, tmp_path):
    line = one_line_exit_2(monkeypatch, capsys, "nope", "--out", str(tmp_path))
    assert "no run 'nope'" in line


def test_a_truncated_record_writes_nothing(monkeypatch, capsys, run_copy):
    text = (run_copy / "result.json").read_text()
    (run_copy / "result.json").write_text(text[: len(text) // 2])
    line = one_line_exit_2(monkeypatch, capsys, str(run_copy))
    assert "not valid JSON" in line
    assert not (run_copy / "report.html").exists()


def test_an_unknown_schema_version_writes_nothing(monkeypatch, capsys, run_copy):
    doc = json.loads((run_copy / "result.json").read_text())
    doc["schema_version"] = 99
    (run_copy / "result.json").write_text(json.dumps(doc))
    line = one_line_exit_2(monkeypatch, capsys, str(run_copy), "-o", str(run_copy / "x.html"))
    assert "unsupported schema_version 99" in line
    assert not (run_copy / "x.html").exists()


def test_an_unknown_baseline_writes_nothing(monkeypatch, capsys, run_copy, tmp_path):
    line = one_line_exit_2(monkeypatch, capsys, str(run_copy), "--baseline", "nightly",
                           "--store", str(tmp_path / "store"))
    assert "no baseline 'nightly'" in line
    assert not (run_copy / "report.html").exists()


def test_a_damaged_interval_log_writes_nothing(monkeypatch, capsys, run_copy):
    with (run_copy / "windows.hlog").open("a") as fh:
        fh.write("Tag=raw:GET:/x,1,1,1,not-a-histogram\n")
    line = one_line_exit_2(monkeypatch, capsys, str(run_copy))
    assert "windows.hlog" in line
    assert not (run_copy / "report.html").exists()


def test_the_report_command_is_listed(monkeypatch, capsys):
    harness(monkeypatch, "--help")
    assert "report" in capsys.readouterr().out
    assert Path(cli.__file__).parent.joinpath("report.py").is_file()


def test_compare_two_runs_by_id_writes_under_compare(monkeypatch, capsys, runs, tmp_path):
    from tests.report.conftest import COMPARE_SECTION_IDS

    out = tmp_path / "reports"
    (out / "runs").mkdir(parents=True)
    for name in ("baseline", "current"):
        shutil.copytree(runs[name], out / "runs" / name)
    code = harness(monkeypatch, "report", "--compare", "baseline", "current", "--out", str(out))
    assert code == 0, capsys.readouterr().err
    page = out / "compare" / "base-1-vs-cur-1.html"
    assert outline(page.read_text()).sections == COMPARE_SECTION_IDS
    assert f"report: {page}" in capsys.readouterr().out


def test_compare_an_ab_job_writes_into_the_job(monkeypatch, capsys, tmp_path):
    from tests.report.conftest import make_ab_job

    job = make_ab_job(tmp_path / "reports")
    code = harness(monkeypatch, "report", "--compare", job.name, "--out", str(tmp_path / "reports"))
    assert code == 0, capsys.readouterr().err
    assert (job / "report.html").is_file()


@pytest.mark.parametrize("args, says", [
    (("--compare", "{cur}", "{cur}"), "the same run"),
    (("--compare", "{cur}", "nope"), "no run 'nope'"),
    (("--compare", "{base}", "{cur}", "--baseline", "{base}"), "do not go together"),
    (("{base}", "{cur}"), "harness report --compare RUN_A RUN_B"),
    (("--compare", "{cur}"), "needs an ab job"),
])
def test_compare_refuses_bad_input_in_one_line(monkeypatch, capsys, runs, tmp_path, args, says):
    target = tmp_path / "page.html"
    line = one_line_exit_2(monkeypatch, capsys, *(
        a.format(cur=runs["current"], base=runs["baseline"]) for a in args),
        "--out", str(tmp_path), "-o", str(target))
    assert says in line
    assert not target.exists() and not (tmp_path / "compare").exists()


def test_compare_refuses_a_job_without_complete_rounds(monkeypatch, capsys, tmp_path):
    from tests.report.conftest import make_ab_job

    job = make_ab_job(tmp_path / "reports", judge=False)
    for run in (tmp_path / "reports" / "runs").iterdir():
        if run.name.startswith("b"):
            shutil.rmtree(run)
    line = one_line_exit_2(monkeypatch, capsys, "--compare", str(job))
    assert "no complete round" in line
    assert not (job / "report.html").exists()


def test_harness_ab_writes_the_job_page(capsys, tmp_path):
    from harness.cli.ab import _report
    from tests.report.conftest import make_ab_job

    job = make_ab_job(tmp_path / "reports")
    _report(job, tmp_path / "reports", tmp_path / "store")
    assert (job / "report.html").is_file()
    assert "report: " in capsys.readouterr().err


def test_a_job_page_that_cannot_be_rendered_is_one_line(capsys, tmp_path):
    from harness.cli.ab import _report
    from tests.report.conftest import make_ab_job

    job = make_ab_job(tmp_path / "reports")
    shutil.rmtree(tmp_path / "reports" / "runs")  # the rounds' runs are gone
    _report(job, tmp_path / "reports", tmp_path / "store")  # returns: no exception
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("no report:") and "harness report" in err[0]
    assert not (job / "report.html").exists()


def test_no_run_at_all_is_one_line(monkeypatch, capsys):
    assert "no run given" in one_line_exit_2(monkeypatch, capsys)
