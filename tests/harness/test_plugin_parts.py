"""The plugin's parts that need no Locust nor gevent (which this process must never
import): the final-report handshake's bookkeeping, the manifest and metrics sources,
and how a `request` event is recorded."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import pytest

from harness.loadgen import handshake
from harness.loadgen.handshake import FinalReports
from harness.loadgen.recorder import Recorder, UnexpectedStatus
from harness.loadgen.sources import ManifestSource, metrics_url, scrape_metrics
from harness.stack.process import free_port


def test_final_reports_name_the_workers_that_never_answered(monkeypatch, caplog):
    monkeypatch.setattr(handshake, "FINAL_GRACE_S", 0.2)
    finals = FinalReports()
    finals.expect(["w1", "w2"])
    assert finals.missing({"w1"}) == {"w2"}
    started = time.monotonic()
    assert finals.wait(lambda: {"w1"}, stop_timeout=0.0, sleep=time.sleep) == {"w2"}
    assert time.monotonic() - started >= 0.2  # it waited out the grace
    assert "no final report from worker(s) ['w2']" in caplog.text


def test_final_reports_stop_waiting_when_every_worker_answered(monkeypatch):
    monkeypatch.setattr(handshake, "FINAL_GRACE_S", 30.0)
    finals = FinalReports()
    finals.expect(["w1", "w2"])
    calls = iter([set(), {"w1"}, {"w1", "w2", "local"}])
    started = time.monotonic()
    assert finals.wait(lambda: next(calls), stop_timeout=0.0, sleep=time.sleep) == set()
    assert time.monotonic() - started < 20  # the third look found both, not the grace
    assert FinalReports().missing(()) == set()  # nothing expected, nothing missing


def test_the_manifest_file_wins_and_the_masters_copy_serves_a_worker_without_it(tmp_path,
                                                                                  monkeypatch):
    monkeypatch.delenv("HARNESS_MANIFEST", raising=False)
    source = ManifestSource()
    assert source.get(None) is None
    source.received = {"from": "master"}
    assert source.get(str(tmp_path / "absent.json")) == {"from": "master"}
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"from": "file"}))
    assert source.get(str(path)) == {"from": "file"}
    path.write_text(json.dumps({"from": "file, rewritten"}))
    assert source.get(str(path)) == {"from": "file"}  # read once per path
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"from": "environment"}))
    monkeypatch.setenv("HARNESS_MANIFEST", str(other))
    assert source.get(None) == {"from": "environment"}
    assert source.get(str(path)) == {"from": "file, rewritten"}  # the option wins


def test_the_metrics_url_and_a_scrape_that_fails(monkeypatch):
    monkeypatch.delenv("HARNESS_METRICS_URL", raising=False)
    assert metrics_url("http://127.0.0.1:8000/") == "http://127.0.0.1:8000/metrics"
    assert metrics_url(None) is None
    monkeypatch.setenv("HARNESS_METRICS_URL", "http://10.0.0.1:9/metrics")
    assert metrics_url("http://127.0.0.1:8000") == "http://10.0.0.1:9/metrics"
    assert scrape_metrics(f"http://127.0.0.1:{free_port()}/metrics", "start") is None


def _cell(recorder: Recorder, key: str):
    delta = recorder.take_delta()
    cells = [w.endpoints[key] for w in delta.windows if key in w.endpoints]
    assert len(cells) == 1
    return cells[0]


@pytest.mark.parametrize("exception, status, kind, unexpected", [
    (None, 200, None, {}),
    (UnexpectedStatus(302, (200,)), 302, "unexpected_status", {"302": 1}),
    (RuntimeError("HTTP 503"), 503, "http_503", {"503": 1}),
])
def test_a_request_event_is_recorded_under_its_endpoint_with_its_failure(exception, status,
                                                                         kind, unexpected):
    recorder = Recorder()
    response = SimpleNamespace(status_code=status, text="", headers={})
    recorder.request_event("GET", "/api/v1/x", 12.5, 100, response, None, exception)
    cell = _cell(recorder, "GET /api/v1/x")
    assert cell.count == 1 and cell.bytes == 100
    assert cell.failures == ({kind: 1} if kind else {})
    assert cell.unexpected == unexpected
    assert bool(cell.error_samples) == (exception is not None)


def test_a_request_event_goes_into_the_window_of_its_start():
    """Locust's `start_time` when given; else the end (now) minus the latency."""
    recorder = Recorder()
    recorder.request_event("GET", "/a", 10.0, 0, start_time=1_700_000_000.2)
    started = time.time()
    recorder.request_event("GET", "/b", 3_000.0, 0)  # 3 s ago
    windows = {key: w.t for w in recorder.take_delta().windows for key in w.endpoints}
    assert windows["GET /a"] == 1_700_000_000
    assert started - 4 <= windows["GET /b"] <= started - 2
