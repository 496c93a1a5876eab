"""`harness report` as a user types it: the page written where asked, bad input exit 2 with
one line and nothing written."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from harness import cli
from tests.report.conftest import SECTION_IDS, outline


@pytest.fixture(autouse=True)
def keep_pytests_signal_handlers(monkeypatch):
    monkeypatch.setattr(cli.signal, "signal", lambda *_: None)


def harness(monkeypatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["harness", *args])
    try:
        cli.main()
    except SystemExit as exc:
        return exc.code or 0
    return 0


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
