"""`harness report --scaling`: runs on several datasets become a p95 table per profile and a
chart; an endpoint built to grow with the data shows its growth, a flat one stays flat, and
runs that cannot make a scaling table are one line, exit 2, nothing written."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET

import pytest

from harness.model import result as results
from harness.outputs import scaling_markdown, scaling_svg
from harness.run.layout import RESULT
from tests.builders import EndpointSpec, LogNormal, build_run
from tests.conftest import harness_cli

OVERVIEW, ANALYTICS = "GET /api/v1/dashboard/overview", "GET /api/v1/dashboard/analytics"
GROWTH = {"tiny": 5.0, "small": 10.0, "medium": 20.0, "large": 40.0}
"""The analytics median (ms) built on each dataset: x8 from tiny to large."""


def run_on(dataset: str, profile: str = "optimized", seed: int = 1,
           scenario: str = "mixed") -> results.RunResult:
    built = build_run({OVERVIEW: EndpointSpec(rps=20, latency_ms=LogNormal(3.0, 0.2)),
                       ANALYTICS: EndpointSpec(rps=10, latency_ms=LogNormal(GROWTH[dataset],
                                                                            0.2))},
                      seconds=30, seed=seed, profile=profile, scenario=scenario,
                      run_id=f"run-{dataset}-{profile}-{seed}").result
    info = built.run.model_copy(update={"dataset": built.run.dataset.model_copy(
        update={"preset": dataset})})
    return built.model_copy(update={"run": info})


def runs() -> list[results.RunResult]:
    return [run_on(d, p, seed) for seed in (1, 2) for p in ("optimized", "naive")
            for d in ("large", "tiny", "medium", "small")]


def test_the_table_orders_datasets_by_size_and_shows_growth_and_the_spread():
    table = scaling_markdown.build(runs())
    assert table.datasets == ["tiny", "small", "medium", "large"]
    assert sorted(table.cells) == ["naive", "optimized"]
    analytics = table.series("optimized", ANALYTICS)
    overview = table.series("optimized", OVERVIEW)
    assert analytics[-1] / analytics[0] == pytest.approx(8.0, rel=0.15)
    assert overview[-1] / overview[0] == pytest.approx(1.0, abs=0.15)
    cell = table.cells["optimized"][ANALYTICS]["large"]
    assert len(cell.p95_ms) == 2 and min(cell.p95_ms) < max(cell.p95_ms)  # two seeds

    text = scaling_markdown.render(table)
    head = next(line for line in text.splitlines() if line.startswith("| endpoint"))
    assert head == ("| endpoint | tiny (40k calls) | small (250k calls) | medium (1M calls) "
                    "| large (10M calls) | large / tiny |")
    row = next(line for line in text.splitlines() if "/dashboard/analytics" in line)
    growth = float(row.rsplit("|", 2)[1].strip().removeprefix("×"))
    assert growth == pytest.approx(8.0, rel=0.15)
    lo, hi = min(cell.p95_ms), max(cell.p95_ms)
    assert f"({scaling_markdown.ms(lo)}–{scaling_markdown.ms(hi)})" in row
    assert text.count("| **all requests** |") == 2 and "## naive" in text
    assert "run-large-naive-2" in text


def test_the_chart_is_one_line_per_endpoint_and_profile_on_a_log_scale():
    table = scaling_markdown.build(runs())
    root = ET.fromstring(scaling_svg.render(table))
    ns = {"s": "http://www.w3.org/2000/svg"}
    lines = root.findall("s:polyline", ns)
    assert len(lines) == 2 * 3  # overview, analytics, all requests; two profiles
    titles = [line.find("s:title", ns).text for line in lines]
    assert titles.count("GET /dashboard/analytics") == 2

    def ys(line):
        return [float(p.split(",")[1]) for p in line.get("points").split()]

    analytics = ys(lines[titles.index("GET /dashboard/analytics")])
    overview = ys(lines[titles.index("GET /dashboard/overview")])
    # SVG y grows downwards: analytics climbs three equal log steps (x2 each), overview flat
    steps = [a - b for a, b in itertools.pairwise(analytics)]
    assert all(s > 0 for s in steps) and max(steps) == pytest.approx(min(steps), rel=0.3)
    assert max(overview) - min(overview) < min(steps) / 2


def test_the_cli_writes_the_table_and_the_chart_beside_it(monkeypatch, capsys, tmp_path):
    dirs = []
    for r in runs()[:4]:
        d = tmp_path / "runs" / r.run.run_id
        d.mkdir(parents=True)
        results.save(r, d / RESULT)
        dirs.append(str(d))
    target = tmp_path / "docs" / "scaling-table.md"
    code = harness_cli(monkeypatch, "report", "--scaling", *dirs, "-o", str(target))
    assert code == 0, capsys.readouterr().err
    assert target.read_text().startswith("# p95 by dataset: `mixed`")
    ET.fromstring(target.with_suffix(".svg").read_text())
    assert "scaling:" in capsys.readouterr().out


@pytest.mark.parametrize(("made", "says"), [
    (lambda: [run_on("tiny")], "at least two datasets"),
    (lambda: [run_on("tiny"), run_on("tiny", seed=2)], "every run is on dataset"),
    (lambda: [run_on("tiny"), run_on("small", scenario="dashboard")], "different scenarios"),
])
def test_runs_that_make_no_scaling_table_are_one_line_and_exit_2(monkeypatch, capsys,
                                                                 tmp_path, made, says):
    dirs = []
    for i, r in enumerate(made()):
        d = tmp_path / f"run{i}"
        d.mkdir()
        results.save(r, d / RESULT)
        dirs.append(str(d))
    code = harness_cli(monkeypatch, "report", "--scaling", *dirs, "--out", str(tmp_path))
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(err) == 1 and says in err[0], err
    assert not (tmp_path / "scaling").exists()


def test_scaling_with_history_is_refused_not_one_of_them_done(monkeypatch, capsys, tmp_path):
    """Both flags once made the history page and said nothing of --scaling."""
    code = harness_cli(monkeypatch, "report", "--scaling", "--history", "--out", str(tmp_path))
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(err) == 1 and "one at a time" in err[0], err
    assert list(tmp_path.iterdir()) == []
