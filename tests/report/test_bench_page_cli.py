"""`harness bench` ends with its page, and `harness bench --report DIR` renders it again:
from a bench run directory built in memory (sessions.json, gate.json, a stored baseline),
bad input as one line and exit 2, a page that cannot be rendered as one line that leaves
the exit code alone; end to end on the fastest benchmark."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness import bench as suites
from harness import bench_store
from harness.analysis import bench as gate_bench
from harness.cli import bench as bench_cli
from harness.model import policy as pol
from harness.run import gate as gate_files
from tests.conftest import harness_cli
from tests.report.conftest import outline
from tests.report.test_bench_page import FAST, bench_set, payload

SECTIONS = ["verdict", "facts", "benchmarks", "charts", "gate"]


harness = harness_cli


@pytest.fixture()
def bench_dir(tmp_path: Path) -> tuple[Path, Path]:
    """A compared bench run directory as `harness bench` leaves it, and its store."""
    store = tmp_path / "store"
    base, cur = bench_set(1, 5, keep=False), bench_set(2, 5, scale=1.5)
    bench_store.save(store, "main", base)
    run_dir = tmp_path / "reports" / "bench" / "20261201T100000Z"
    bench_store.write_set(run_dir / suites.SESSIONS_JSON, cur)
    gate = gate_bench.compare_benchmarks(base, cur, gate_bench.settings_from(pol.Policy()),
                                         labels=("baseline main", "current"),
                                         run_ids=("main", run_dir.name))
    gate_files.write(gate, run_dir)
    return run_dir, store


def test_report_renders_a_compared_run_again_with_its_baseline(monkeypatch, capsys,
                                                              bench_dir):
    run_dir, store = bench_dir
    code = harness(monkeypatch, "bench", "--report", str(run_dir), "--store", str(store))
    assert code == 0, capsys.readouterr().err
    page = run_dir / "report.html"
    assert f"bench report: {page}" in capsys.readouterr().out
    html = page.read_text()
    assert outline(html).sections == SECTIONS
    assert "Verdict: <span class=\"verdict-word\">regressed" in html
    data = payload(html)
    assert data["gate"]["verdict"] == "regressed"
    assert len(data["baseline"]) == 1 and data["baseline"][0]["record"]["run"]["run_id"] == "main"
    assert "<caption>baseline main</caption>" in html


def test_a_baseline_gone_from_the_store_is_a_note_not_an_error(monkeypatch, capsys, bench_dir,
                                                              tmp_path):
    run_dir, _ = bench_dir
    code = harness(monkeypatch, "bench", "--report", str(run_dir), "--store",
                   str(tmp_path / "elsewhere"))
    assert code == 0, capsys.readouterr().err
    html = (run_dir / "report.html").read_text()
    assert "the baseline&#39;s sessions are not drawn: no stored benchmark result" in html
    assert payload(html)["baseline"] == [] and "regressed" in html  # the gate still shows


@pytest.mark.parametrize("args, words", [
    (["--save", "x"], "it takes no --save"),
    (["--compare", "main", "-k", "x"], "it takes no --compare, -k"),
])
def test_report_with_run_options_is_one_line_and_exit_2(monkeypatch, capsys, bench_dir, args,
                                                        words):
    run_dir, store = bench_dir
    code = harness(monkeypatch, "bench", "--report", str(run_dir), "--store", str(store), *args)
    err = capsys.readouterr().err.strip()
    assert code == 2 and words in err and len(err.splitlines()) == 1
    assert not (run_dir / "report.html").exists()


def test_report_of_a_directory_that_is_no_bench_run_is_exit_2(monkeypatch, capsys, tmp_path):
    code = harness(monkeypatch, "bench", "--report", str(tmp_path))
    err = capsys.readouterr().err.strip()
    assert code == 2 and "not a harness bench run directory (no sessions.json)" in err
    assert "Traceback" not in err and not (tmp_path / "report.html").exists()


def test_a_page_that_cannot_be_rendered_is_one_line_on_stderr(monkeypatch, capsys, tmp_path):
    def broken(*_a, **_kw):
        raise ValueError("template exploded")

    monkeypatch.setattr(suites, "write_page", broken)
    bench_cli._page(tmp_path, bench_set(1, 1), None, None, None)  # returns: no exception
    err = capsys.readouterr().err.strip()
    assert err == f"no bench report: template exploded (render it later: harness bench " \
                  f"--report {tmp_path})"


@pytest.mark.e2e
def test_harness_bench_ends_with_its_page_saved_and_compared(tmp_path: Path):
    def bench(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "harness.cli", "bench", "--sessions", "1",
                               "-k", FAST, "--store", "store", "--out", "reports", *args],
                              cwd=tmp_path, capture_output=True, text=True, timeout=300,
                              check=False)

    saved = bench("--save", "base")
    assert saved.returncode == 0, saved.stdout + saved.stderr
    compared = bench("--compare", "base")
    assert compared.returncode in (0, 1), compared.stdout + compared.stderr
    first, second = sorted((tmp_path / "reports" / "bench").iterdir())
    assert f"bench report: reports/bench/{second.name}/report.html" in compared.stdout
    alone, judged = ((d / "report.html").read_text() for d in (first, second))
    assert outline(alone).sections == outline(judged).sections == SECTIONS
    assert "not compared" in alone and payload(alone)["gate"] is None
    data = payload(judged)
    assert data["gate"]["checks"][0]["subject"] == FAST
    assert data["current"]["record"]["run"]["run_id"] == second.name
    # one session a side: its rounds are the samples, and both sides' are drawn
    assert [c["x"]["kind"] for c in data["charts"].values()] == ["session", "nines"]
