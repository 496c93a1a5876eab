"""`harness run --abort-on`: a bad spec is exit 2 before anything starts; a fired one is
exit 1 with one line, the gate skipped; the record of why loads and validates."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jsonschema
import pytest

from harness import cli
from harness.analysis.abort import Firing, parse_spec
from harness.cli import run as run_cli
from harness.model import result as results
from harness.run import runner
from tests.builders import EndpointSpec, build_run

OVERVIEW = "GET /api/v1/dashboard/overview"


@pytest.fixture(autouse=True)
def keep_pytests_signal_handlers(monkeypatch):
    monkeypatch.setattr(cli.signal, "signal", lambda *_: None)


def harness(monkeypatch, capsys, *argv: str) -> tuple[int, list[str]]:
    """`harness ARGV` in this process: its exit code and its non-empty stderr lines."""
    monkeypatch.setattr(sys, "argv", ["harness", *argv])
    monkeypatch.delenv("HARNESS_DEBUG", raising=False)
    with pytest.raises(SystemExit) as info:
        cli.main()
    return info.value.code, [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]


class NoRun:
    """Stands in for `Run`: a usage error must come before any run is made."""

    def __init__(self, *_args, **_kwargs) -> None:
        raise AssertionError("a run was started")


@pytest.mark.parametrize("spec, words", [
    ("p95>500", "needs a unit, ms or s"),
    ("p95:/api/v1/dashboard/overview>=500ms for 30s", "> or <"),
    ("latency>500ms", "unknown metric 'latency'"),
    ("errors>5% for soon", "after 'for'"),
    ("errors>5% for 2m", "could never fire"),  # not shorter than the 60 s default duration
])
def test_a_bad_spec_is_one_line_exit_2_and_no_run_directory(monkeypatch, capsys, tmp_path,
                                                            spec, words):
    monkeypatch.setattr(runner, "Run", NoRun)
    out = tmp_path / "reports"
    code, lines = harness(monkeypatch, capsys, "run", "--dataset", "tiny", "--out", str(out),
                          "--state-dir", str(tmp_path / "state"), "--abort-on", "errors>5%",
                          "--abort-on", spec)
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith("error: --abort-on") and words in lines[0]
    assert not out.exists() and not (tmp_path / "state").exists()


def firing(run_dir: Path) -> Firing:
    spec = parse_spec("p95:/api/v1/dashboard/overview>500ms for 10s")
    return Firing(spec, OVERVIEW, 912.5, since=1_800_000_010.0, at=1_800_000_020.5,
                  measure_from=1_800_000_000.0)


def test_a_fired_threshold_is_one_line_exit_1_and_the_gate_is_skipped(monkeypatch, capsys,
                                                                      tmp_path):
    built = build_run({OVERVIEW: EndpointSpec(rps=5)}, seconds=8, warmup_s=2)
    run_dir = built.write(tmp_path / "reports" / "runs" / "r1")
    made: list = []  # the configs runs were made with

    class AbortedRun:
        def __init__(self, config, _progress) -> None:
            made.append(config)

        def execute(self) -> runner.RunOutcome:
            return runner.RunOutcome(run_dir, None, firing(run_dir))

    def no_gate(*_args, **_kwargs):
        raise AssertionError("an aborted run was gated")

    monkeypatch.setattr(runner, "Run", AbortedRun)
    monkeypatch.setattr(run_cli, "_record", lambda outcome: built.result)
    monkeypatch.setattr("harness.run.gate.judge", no_gate)
    monkeypatch.setattr("harness.baselines.load", lambda *_: None)
    monkeypatch.setattr("harness.baselines.resolve", lambda *_: tmp_path)
    monkeypatch.setattr("harness.cli.gate.load_policy", lambda *_: None)
    code, lines = harness(monkeypatch, capsys, "run", "--out", str(tmp_path / "reports"),
                          "--rounds", "3", "--baseline", "main", "--abort-on",
                          "p95:/api/v1/dashboard/overview>500ms for 10s")
    assert code == 1
    assert lines[-1].startswith("aborted: --abort-on 'p95:/api/v1/dashboard/overview>500ms "
                                "for 10s' fired: GET /api/v1/dashboard/overview p95 912.5 ms")
    assert "20.5s into the measured phase" in lines[-1] and str(run_dir) in lines[-1]
    assert len(made) == 1  # the other rounds are not run
    assert made[0].abort_on[0].threshold == 500.0


def test_the_abort_record_validates_and_older_records_still_load(tmp_path):
    built = build_run({OVERVIEW: EndpointSpec(rps=5)}, seconds=8, warmup_s=2)
    aborted = built.result.model_copy(deep=True)
    aborted.run.status = "aborted"
    aborted.run.aborted = firing(tmp_path).info()
    results.save(aborted, tmp_path / "result.json")
    raw = (tmp_path / "result.json").read_text()
    jsonschema.validate(json.loads(raw), results.json_schema())
    loaded = results.load(tmp_path / "result.json")
    assert loaded.run.status == "aborted" and loaded.run.aborted == aborted.run.aborted
    assert loaded.run.aborted.breached_for_s == 10.5
    # a record written before --abort-on existed: no `aborted` key at all
    plain = built.result.model_dump(mode="json")
    assert "aborted" in plain["run"]
    del plain["run"]["aborted"]
    (tmp_path / "old.json").write_text(json.dumps(plain))
    assert results.load(tmp_path / "old.json").run.aborted is None


def test_runs_listing_and_summary_show_the_aborted_status(tmp_path):
    from harness.outputs.markdown import summary_markdown
    from harness.outputs.tables import runs_table

    built = build_run({OVERVIEW: EndpointSpec(rps=5)}, seconds=8, warmup_s=2)
    built.result.run.status = "aborted"
    assert "(aborted)" in summary_markdown(built.result)
    table = runs_table([("r1", built.result, None)], "runs")
    assert "aborted" in [str(c) for c in table.columns[3].cells]


class FakeMaster:
    """A Locust master that stays up for `lives` polls, writing one live.json per poll."""

    def __init__(self, path: Path, lives: list) -> None:
        self.path, self.lives, self.proc = path, list(lives), None

    @property
    def alive(self) -> bool:
        if not self.lives:
            return False
        self.path.write_text(self.lives.pop(0).model_dump_json())
        return True


def watch(monkeypatch, tmp_path: Path, specs: list[str], lives: list) -> runner.Run:
    """The runner's watch loop over these live snapshots, against a stack of no components."""
    from io import StringIO

    from rich.console import Console

    from harness.analysis.abort import parse_specs
    from harness.run.config import RunConfig
    from harness.run.progress import Progress

    config = RunConfig(out=tmp_path, abort_on=parse_specs(specs))
    run = runner.Run(config, Progress(Console(file=StringIO())))
    run.run_dir.mkdir(parents=True)
    run.locust = [FakeMaster(run.run_dir / "live.json", lives)]
    monkeypatch.setattr(runner.time, "sleep", lambda _s: None)
    run._watch(type("NoStack", (), {"target": None, "stub": None})())
    return run


def live(t: float, p95: float, phase: str = "measured"):
    """A snapshot at second t of the measured phase, overview p95 as given."""
    from harness.model.client import LiveEndpoint, LiveStatus

    e = LiveEndpoint(rps=10, p95_ms=p95, error_rate=0.0, count=50, p50_ms=p95 / 2,
                     p90_ms=p95, p99_ms=p95, max_ms=p95)
    return LiveStatus(t=1_800_000_000 + t, phase=phase, users=5, rps=10,
                      endpoints={OVERVIEW: e}, measure_from=1_800_000_000,
                      span_from=1_800_000_000 + t - 6, span_to=1_800_000_000 + t - 1, total=e)


def test_the_watch_loop_stops_on_a_fired_threshold_and_records_why(monkeypatch, tmp_path):
    lives = [live(t, 900.0 if t >= 10 else 20.0) for t in range(6, 30)]
    run = watch(monkeypatch, tmp_path, ["p95:/api/v1/dashboard/overview>500ms for 3s"], lives)
    assert run.status == "aborted" and run.aborted is not None
    assert run.aborted.at == 1_800_000_013 and run.aborted.since == 1_800_000_010
    assert len(run.locust[0].lives) == 30 - 14  # stopped at once: the master still up
    assert run.notes == [run.aborted.message()]


def test_the_watch_loop_notes_a_spec_it_never_judged(monkeypatch, tmp_path):
    lives = [live(t, 900.0, phase="warmup") for t in range(3)] + [live(8, 20.0)]
    run = watch(monkeypatch, tmp_path, ["p95:/api/v1/dashboard/overview>500ms",
                           "errors:/api/v1/nowhere>1%"], lives)
    assert run.status == "complete" and run.aborted is None
    assert run.notes == [("--abort-on 'errors:/api/v1/nowhere>1%' was never judged: no "
                          "requests to /api/v1/nowhere in the measured phase")]
