"""`harness capacity` without processes: the search over a simulated service whose limit the
test sets, the record it writes, its table, and every bad input refused with exit 2 before
anything starts."""

from __future__ import annotations

import sys

import pytest
from rich.console import Console

from harness import cli
from harness.analysis.capacity import min_requests, parse_slo
from harness.cli.capacity import capacity_table
from harness.errors import Interrupted
from harness.model.capacity import CAPACITY_JSON, CapacityRecord, Plan
from harness.run import capacity as runcap
from harness.run.config import RunConfig
from harness.stack.stack import StackConfig
from tests.builders import EndpointSpec, LogNormal, build_run

SLO = parse_slo("p95<100ms", "<1%")
PLAN = Plan(start_rate=10, factor=2, max_rate=1000, max_steps=10,
            min_requests=min_requests(0.95), min_step_s=10, max_step_s=60, warmup_s=2,
            max_shortfall=0.1)


class Progress:
    def __init__(self) -> None:
        self.phases: list[str] = []

    def phase(self, message: str) -> None:
        self.phases.append(message)


def simulated(limit: float, saturates_at: float | None = None):
    """A service that answers in ~20 ms up to `limit` tasks/s and ~400 ms past it; the
    generator saturates at `saturates_at`. Each task is one request; users pace 0.5/s."""
    seen: list[RunConfig] = []

    def run_step(config: RunConfig, _progress) -> object:
        seen.append(config)
        rate = config.users * 0.5
        slow = rate > limit
        built = build_run({"GET /api/v1/dashboard/overview": EndpointSpec(
            rps=rate, latency_ms=LogNormal(400.0 if slow else 20.0))},
            seconds=int(config.duration_s), warmup_s=int(config.warmup_s), users=config.users,
            saturated=saturates_at is not None and rate >= saturates_at,
            run_id=f"step-{len(seen)}")
        return built.result

    return run_step, seen


def job(tmp_path, plan: Plan = PLAN) -> runcap.CapacityJob:
    base = RunConfig(scenario="dashboard", out=tmp_path, stack=StackConfig(dataset="tiny"))
    return runcap.CapacityJob(base=base, slo=SLO, plan=plan)


def test_the_search_finds_the_highest_rate_below_the_simulated_limit(tmp_path):
    run_step, seen = simulated(limit=60)
    rec, directory = runcap.search(job(tmp_path), Progress(), run_step)
    assert [s.asked_rate for s in rec.steps] == [10, 20, 40, 80]
    assert [s.verdict.outcome for s in rec.steps] == ["held"] * 3 + ["latency"]
    assert rec.conclusion.capacity_rate == 40 and rec.conclusion.broke_by == "latency"
    assert rec.conclusion.broke_at_rate == 80 and rec.status == "complete"
    # users follow the rate; a slow step runs long enough for its requests, within bounds
    assert [c.users for c in seen] == [20, 40, 80, 160]
    assert [c.duration_s for c in seen] == [46, 23, 12, 10]
    assert all(c.warmup_s == 2 and c.out == directory for c in seen)
    assert directory == tmp_path / "capacity" / rec.id
    on_disk = CapacityRecord.model_validate_json((directory / CAPACITY_JSON).read_bytes())
    assert on_disk == rec
    assert on_disk.slo.text == "p95<100ms" and on_disk.kind == "capacity"


def test_a_saturated_generator_ends_the_search_as_cannot_tell(tmp_path):
    run_step, _ = simulated(limit=10_000, saturates_at=70)
    rec, _ = runcap.search(job(tmp_path), Progress(), run_step)
    assert rec.steps[-1].verdict.outcome == "cannot_tell"
    assert rec.conclusion.broke_by == "cannot_tell" and rec.conclusion.capacity_rate == 40
    assert "not a limit of the service" in rec.conclusion.summary


def test_an_interrupted_step_keeps_the_steps_done_and_says_so(tmp_path):
    run_step, _ = simulated(limit=1000)

    def interrupted_third(config, progress):
        if config.users >= 80:
            raise Interrupted("interrupted by SIGINT")
        return run_step(config, progress)

    with pytest.raises(Interrupted):
        runcap.search(job(tmp_path), Progress(), interrupted_third)
    (directory,) = (tmp_path / "capacity").iterdir()
    rec = CapacityRecord.model_validate_json((directory / CAPACITY_JSON).read_bytes())
    assert rec.status == "interrupted" and len(rec.steps) == 2
    assert rec.conclusion is not None and rec.conclusion.capacity_rate == 20
    assert any("SIGINT" in n for n in rec.notes)


def test_the_table_shows_every_step_and_the_conclusion(tmp_path):
    run_step, _ = simulated(limit=60)
    rec, _ = runcap.search(job(tmp_path), Progress(), run_step)
    console = Console(width=200, record=True)
    console.print(capacity_table(rec))
    text = console.export_text()
    assert "broke: latency" in text and text.count("held") >= 3
    assert "capacity 40 tasks/s" in text and "95% bounds" in text


# ---- bad input: exit 2, one line, nothing started ----------------------------------------

@pytest.fixture
def harness_cli(monkeypatch, tmp_path):
    """`harness capacity ...` through `main()`, failing the test if a search starts."""
    monkeypatch.setattr(cli.signal, "signal", lambda *_: None)

    def no_search(*_a, **_k):
        raise AssertionError("the search started")

    monkeypatch.setattr(runcap, "search", no_search)

    def invoke(*args: str) -> int:
        monkeypatch.setattr(sys, "argv", ["harness", "capacity", "--out", str(tmp_path),
                                          *args])
        with pytest.raises(SystemExit) as info:
            cli.main()
        return info.value.code

    return invoke


@pytest.mark.parametrize("args", [
    ("--slo", "p95>100ms"), ("--slo", "p95<100"), ("--slo", "latency<1s"),
    ("--slo", "p95<100ms", "--errors", "5"), ("--slo", "p95<100ms", "--errors", ">1%"),
    ("--slo", "p95<100ms", "--factor", "1"), ("--slo", "p95<100ms", "--start-rate", "0"),
    ("--slo", "p95<100ms", "--start-rate", "50", "--max-rate", "10"),
    ("--slo", "p95<100ms", "--scenario", "healthz"),
    ("--slo", "p95<100ms", "--scenario", "nope"),
    ("--slo", "p95<100ms", "--pace-scale", "0"),
    ("--slo", "p95<100ms", "--dataset", "huge"),
    ("--slo", "p95<100ms", "--step-duration", "ten"),
])
def test_bad_input_is_exit_2_before_anything_starts(harness_cli, capsys, tmp_path, args):
    assert harness_cli(*args) == 2
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), lines
    assert not (tmp_path / "capacity").exists()


def test_the_slo_is_required(harness_cli, capsys):
    assert harness_cli() == 2
    assert "--slo" in capsys.readouterr().err
