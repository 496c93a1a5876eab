"""Multiprocess mode: workers' values merge, a stale directory never leaks into counts.

prometheus-client picks its multiprocess value store when it is imported, so
every "worker" here is a short subprocess with `PROMETHEUS_MULTIPROC_DIR` set
(each ends before the test does). Run by hand (`python -m target_service`) or by
the harness, the directory is emptied before the workers start: a file left by
an earlier run would add its counts to this one's.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import ClassVar

import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness.stack import stack as stack_module
from harness.stack.stack import Stack, StackConfig
from target_service.__main__ import MULTIPROC_ENV, prepare_multiprocess_dir

REPO = Path(__file__).resolve().parents[2]

WORKER = textwrap.dedent("""
    import sys
    from prometheus_client import CollectorRegistry
    from target_service.runtime import RuntimeMetrics, RuntimeMonitor
    from target_service.telemetry import ServiceMetrics

    requests, retire = int(sys.argv[1]), sys.argv[2] == "retire"
    metrics = ServiceMetrics(CollectorRegistry())
    monitor = RuntimeMonitor(RuntimeMetrics(metrics.registry))
    for _ in range(requests):
        metrics.http_duration.labels("GET", "/api/v1/agents", "200").observe(0.01)
        metrics.worker_requests.inc()
    monitor.sample()
    if retire:
        metrics.retire_process()
    if len(sys.argv) > 3:
        sys.stdout.write(metrics.render()[0].decode())
""")


def worker(directory: Path, requests: int, *, retire: bool = False,
           render: bool = False) -> str:
    """One short-lived 'worker' process recording `requests` requests; its scrape if asked."""
    env = {**os.environ, MULTIPROC_ENV: str(directory)}
    argv = [sys.executable, "-c", WORKER, str(requests), "retire" if retire else "keep"]
    done = subprocess.run([*argv, *(["render"] if render else [])], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def samples(text: str, name: str) -> list:
    return [s for f in text_string_to_metric_families(text) for s in f.samples
            if s.name == name]


def agents_count(text: str) -> float:
    return sum(s.value for s in samples(text, "http_request_duration_seconds_count"))


def test_two_workers_sum_exactly_and_keep_one_memory_series_each(tmp_path):
    worker(tmp_path, 5)
    scrape = worker(tmp_path, 3, render=True)
    assert agents_count(scrape) == 8  # counters and histograms: summed over processes
    rss = samples(scrape, "process_resident_memory_bytes")
    assert len({s.labels["pid"] for s in rss}) == 2 and all(s.value > 0 for s in rss)
    served = {s.labels["pid"]: s.value for s in samples(scrape, "target_worker_requests")}
    assert sorted(served.values()) == [3, 5]
    assert sum(s.value for s in samples(scrape, "process_cpu_seconds_total")) > 0
    assert not samples(scrape, "http_request_duration_seconds_created")


def test_a_retired_worker_leaves_its_history_but_not_its_live_gauges(tmp_path):
    worker(tmp_path, 5, retire=True)
    scrape = worker(tmp_path, 3, render=True)
    assert agents_count(scrape) == 8
    served = [s.value for s in samples(scrape, "target_worker_requests")]
    assert served == [3]


def test_a_stale_directory_is_emptied_before_the_workers_start(tmp_path, monkeypatch):
    worker(tmp_path, 5)  # a previous run's worker
    (tmp_path / "notes.txt").write_text("not ours")
    assert agents_count(worker(tmp_path, 0, render=True)) == 5  # it would leak...
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path))
    assert prepare_multiprocess_dir(2) == tmp_path
    assert not list(tmp_path.glob("*.db"))
    assert (tmp_path / "notes.txt").read_text() == "not ours"  # only prometheus's files go
    assert agents_count(worker(tmp_path, 3, render=True)) == 3  # ...and does not


def test_without_a_directory_several_workers_get_a_fresh_one(monkeypatch):
    monkeypatch.setenv(MULTIPROC_ENV, "")  # recorded, so the variable the code sets is undone
    monkeypatch.delenv(MULTIPROC_ENV)
    assert prepare_multiprocess_dir(1) is None and MULTIPROC_ENV not in os.environ
    made = prepare_multiprocess_dir(2)
    try:
        assert made is not None and made.is_dir() and not list(made.iterdir())
        assert os.environ[MULTIPROC_ENV] == str(made)
    finally:
        os.environ.pop(MULTIPROC_ENV, None)  # later tests in this process: single-process mode
        if made is not None:
            os.rmdir(made)


class _FakeProcess:
    """Stands in for the target's process: records its environment, starts nothing."""

    env: ClassVar[dict[str, str]] = {}

    def __init__(self, name, argv, log_path, env=None, **kwargs) -> None:
        _FakeProcess.env = dict(env or {})

    def start(self) -> _FakeProcess:
        return self

    def wait_until(self, *args, **kwargs) -> None:
        pass


@pytest.mark.parametrize("workers", [1, 2])
def test_the_harness_gives_several_target_workers_an_empty_directory(tmp_path, monkeypatch,
                                                                     workers):
    stale = tmp_path / "prometheus-multiproc"
    stale.mkdir()
    (stale / "counter_4242.db").write_bytes(b"stale")
    monkeypatch.setattr(stack_module, "ManagedProcess", _FakeProcess)
    Stack(StackConfig(run_dir=tmp_path, target_workers=workers))._start_target()
    if workers == 1:
        assert MULTIPROC_ENV not in _FakeProcess.env
    else:
        assert Path(_FakeProcess.env[MULTIPROC_ENV]) == stale.resolve()
        assert not list(stale.iterdir())
