"""The Locust plugin: pure recording/merging here, real Locust processes in the e2e tests.

Locust is never imported in this process (it monkey-patches the interpreter
with gevent); everything that needs it runs `python -m locust` as a child.
"""

from __future__ import annotations

import json
import math
import random

import msgpack
import pytest
from pydantic import ValidationError

from harness import hdr
from harness.loadgen.aggregate import RunAggregate
from harness.loadgen.health import RULE, ProcessHealth, generator_health
from harness.loadgen.output import RunFiles
from harness.loadgen.recorder import (
    ConnectionFailure,
    InvalidBody,
    Recorder,
    TenantLeak,
    TimeoutFailure,
    UnexpectedStatus,
    classify_failure,
)
from harness.model.client import ClientDoc, Delta, LiveStatus, Pacing
from harness.model.endpoint import endpoint_key, interval_tag
from tests.harness.conftest import (
    assert_plugin_output,
    locust_cmd,
    plugin_windows,
    run_locust,
    write_manifest,
)

T0 = 1_700_000_000  # a whole second


class Clock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


# ---- failure kinds and names ----------------------------------------------------------

def test_failure_kinds():
    assert classify_failure(None) is None
    assert classify_failure(TenantLeak("GET /x", 1, 2)) == "tenant_leak"
    assert classify_failure(UnexpectedStatus(500, (200,))) == "http_500"
    assert classify_failure(UnexpectedStatus(404, (200,))) == "http_404"
    assert classify_failure(UnexpectedStatus(200, (201,))) == "unexpected_status"
    assert classify_failure(InvalidBody("x")) == "invalid_body"
    assert classify_failure(ConnectionFailure("x")) == "connection"
    assert classify_failure(TimeoutFailure("x")) == "timeout"
    assert classify_failure(TimeoutError("t")) == "timeout"
    assert classify_failure(ConnectionRefusedError()) == "connection"

    class BadStatusCode(ConnectionError):  # geventhttpclient's shape
        code = 503

    assert classify_failure(BadStatusCode()) == "http_503"
    assert classify_failure(RuntimeError("x"), status=502) == "http_502"
    assert classify_failure(KeyError("x")) == "key_error"


def test_endpoint_names():
    assert endpoint_key("get", "/api/v1/agents/{agent_id}") == "GET /api/v1/agents/{agent_id}"
    assert endpoint_key("GET", "/api/v1/activity?limit=20&before=x") == "GET /api/v1/activity"
    assert endpoint_key("GET", "http://h:1/api/v1/agents?x=1") == "GET /api/v1/agents"
    assert endpoint_key("post", "http://h:1") == "POST /"
    # a user-written name with what an interval-log tag cannot hold still gets a tag
    key = endpoint_key("GET", "agents page, all\tof them")
    assert key == "GET agents%20page%2C%20all%09of%20them"
    assert interval_tag(key) == "raw:GET:agents%20page%2C%20all%09of%20them"
    assert endpoint_key(*key.split(" ", 1)) == key  # normalizing twice changes nothing


# ---- recording and merging ----------------------------------------------------------

def record_some(rec: Recorder, rng: random.Random, n: int, start: float, span: float,
                key: str = "GET /api/v1/dashboard/overview") -> list[tuple[float, float]]:
    out = []
    for _ in range(n):
        t = start + rng.random() * span
        ms = rng.lognormvariate(3, 0.8)
        late = rng.choice((0.0, 0.0, 0.05))
        rec.request(key, t, ms, 100, None, {"intended_start": t - late, "task_start": t})
        out.append((t, ms))
    return out


def test_delta_is_json_and_msgpack_safe_and_resets():
    rec = Recorder(clock=Clock())
    rec.request("GET /x", T0 + 0.5, 12.0, 10, "http_500", {"x_cache": "hit"}, 500)
    rec.tasks(intended=[T0 + 0.1], started=T0 + 0.2)
    rec.freshness(T0 + 0.3, 0.4)
    rec.freshness(T0 + 0.3, None)
    rec.cpu_sample(T0 + 1, 12.5)
    rec.cpu_warning()
    delta = rec.take_delta()
    wire = delta.model_dump()  # what travels in Locust's report
    assert json.loads(json.dumps(wire)) == json.loads(delta.model_dump_json())
    back = msgpack.unpackb(msgpack.packb(wire), strict_map_key=False)
    assert Delta.model_validate(back) == delta  # the master reads back exactly what was sent
    cell = delta.windows[0].endpoints["GET /x"]
    assert cell.count == 1 and cell.failures == {"http_500": 1}
    assert cell.x_cache == {"HIT": 1} and cell.unexpected == {"500": 1}
    assert delta.requests == 1 and delta.cpu_warnings == 1
    assert rec.empty
    again = rec.take_delta(final=True)
    assert again.windows == [] and again.final and rec.final_sent
    with pytest.raises(ValidationError):  # a report of another shape is refused, not guessed
        Delta.model_validate({**wire, "windows": [{"t": 1, "endpoints": {"x": {"raw": "?"}}}]})
    assert rec.total_requests == 1


def test_corrected_latency_adds_task_lateness():
    rec = Recorder()
    rec.request("GET /x", T0, 10.0, 0, None, {"intended_start": T0 - 0.5, "task_start": T0})
    rec.request("GET /x", T0, 10.0, 0, None, {"intended_start": T0 + 0.5, "task_start": T0})
    rec.request("GET /x", T0, 10.0, 0, None, None)  # unpaced requests: no correction
    cell = rec.take_delta().windows[0].endpoints["GET /x"]
    raw, corrected = hdr.decode(cell.histogram), hdr.decode(cell.corrected_histogram)
    assert raw.get_max_value() == pytest.approx(10_000, rel=1e-3)
    assert corrected.get_max_value() == pytest.approx(510_000, rel=1e-3)
    assert corrected.get_total_count() == 3
    assert corrected.get_value_at_percentile(50) == pytest.approx(10_000, rel=1e-3)


def test_merge_of_many_workers_equals_one_process_exactly():
    rng = random.Random(5)
    keys = ("GET /api/v1/dashboard/overview", "GET /api/v1/agents/{agent_id}")
    samples = [(rng.choice(keys), T0 + rng.random() * 10, rng.lognormvariate(3, 0.8),
                rng.choice((0.0, 0.0, 0.05)), rng.random() < 0.02) for _ in range(3600)]

    def feed(rec: Recorder, part) -> None:
        for key, t, ms, late, failed in part:
            rec.request(key, t, ms, 100, "http_500" if failed else None,
                        {"intended_start": t - late, "task_start": t})

    single = RunAggregate(warmup_s=3)
    single.start(T0 + 0.25)
    one = Recorder()
    feed(one, samples)
    single.merge(one.take_delta(), "local", "local")

    workers = RunAggregate(warmup_s=3)
    workers.start(T0 + 0.25)
    recorders = [Recorder() for _ in range(3)]
    reports = []
    for i in range(0, len(samples), 300):  # periodic reports, 3 workers round robin
        rec = recorders[(i // 300) % 3]
        feed(rec, samples[i:i + 300])
        reports.append(((i // 300) % 3, rec.take_delta()))
    random.Random(1).shuffle(reports)  # arrival order does not matter
    for w, delta in reports:
        workers.merge(delta, f"w{w}")

    a, b = workers.totals, single.totals
    assert a.keys() == b.keys() == set(keys)
    assert sum(t.count + t.warmup_count for t in a.values()) == len(samples)
    for key in keys:
        assert (a[key].count, a[key].warmup_count) == (b[key].count, b[key].warmup_count)
        assert a[key].failures == b[key].failures
        for hist in ("raw", "corrected"):
            ha, hb = getattr(a[key], hist), getattr(b[key], hist)
            assert ha.get_total_count() == hb.get_total_count() == a[key].count
            assert hdr.encode(ha) == hdr.encode(hb)  # bucket for bucket
    assert sum(p.requests for p in workers.processes.values()) == len(samples)
    for agg in (single, workers):
        agg.stopping(T0 + 10.5)
    wa, wb = workers.take_closed(math.inf), single.take_closed(math.inf)
    assert [w.record.t - T0 for w in wa] == list(range(11))  # T0 .. T0+10, no holes
    assert [w.record for w in wa] == [w.record for w in wb]  # counts, failures, phases
    assert sum(c.count for w in wa for c in w.record.endpoints.values()) == len(samples)
    for a_w, b_w in zip(wa, wb, strict=True):
        assert a_w.histograms.keys() == b_w.histograms.keys()
        for key, (raw, corrected) in a_w.histograms.items():
            assert hdr.encode(raw) == hdr.encode(b_w.histograms[key][0])
            assert hdr.encode(corrected) == hdr.encode(b_w.histograms[key][1])
            assert raw.get_total_count() == a_w.record.endpoints[key].count
    da, db = workers.client_doc("2.x", "master", 3), single.client_doc("2.x", "local", 0)
    assert isinstance(da, ClientDoc) and da.endpoints == db.endpoints


def test_warmup_boundary_is_a_whole_second_and_exact():
    agg = RunAggregate(warmup_s=2)
    agg.start(T0 + 0.4)  # first spawn
    assert agg.measure_from == T0 + 3  # ceil(T0 + 2.4)
    rec = Recorder()
    rec.request("GET /x", T0 + 2.99, 1.0, 0, None)  # started before: warm-up
    rec.request("GET /x", T0 + 3.0, 1.0, 0, None)  # started at the boundary: measured
    rec.request("GET /x", T0 + 5.5, 1.0, 0, "http_500", None, 500)
    agg.merge(rec.take_delta(), "local", "local")
    tot = agg.totals["GET /x"]
    assert (tot.count, tot.warmup_count) == (2, 1)
    assert dict(tot.failures) == {"http_500": 1}
    assert agg.unexpected == {"GET /x": {"500": 1}}

    no_warmup = RunAggregate(warmup_s=0)
    no_warmup.start(T0 + 0.4)
    assert no_warmup.measure_from == T0 + 0.4
    rec.request("GET /x", T0 + 0.41, 1.0, 0, None)
    no_warmup.merge(rec.take_delta(), "local", "local")
    assert no_warmup.totals["GET /x"].count == 1


def test_phases_users_and_windows(tmp_path):
    agg = RunAggregate(warmup_s=3)
    agg.start(T0 + 0.5)
    agg.spawn_complete(T0 + 1.5)
    agg.spawn_complete(T0 + 9)  # only the first counts
    for t in range(T0, T0 + 6):
        agg.set_users(t, min(10, (t - T0 + 1) * 5))
    rec = Recorder()
    for t in range(T0, T0 + 6):
        rec.request("GET /x", t + 0.5, 2.0, 0, None)
    agg.merge(rec.take_delta(), "local", "local")
    assert agg.phase(T0 + 1) == "ramp"
    assert agg.phase(T0 + 2) == "warmup" and agg.phase(T0 + 4.1) == "measured"
    agg.stopping(T0 + 6.2)
    assert agg.phase(T0 + 6.3) == "stopping"
    files = RunFiles(tmp_path)
    files.begin(T0 + 0.5)
    closed = agg.take_closed(math.inf)
    files.windows(closed)
    windows = [w.record for w in closed]
    phases = [(w.t - T0, w.phase, w.users) for w in windows]
    assert phases == [(0, "ramp", 5), (1, "ramp", 10), (2, "warmup", 10), (3, "warmup", 10),
                      (4, "measured", 10), (5, "measured", 10), (6, "measured", 10)]
    assert [w.spawning for w in windows] == [True, True] + [False] * 5
    assert windows[-1].endpoints == {}  # empty seconds are kept: a time series
    assert agg.take_closed(math.inf) == []  # each second is handed over once
    assert agg.windows == {}
    doc = agg.client_doc("2.x", "local", workers=0)
    assert doc.spawn_complete_at == T0 + 1.5 and doc.measure_from == T0 + 4
    ep = doc.endpoints["GET /x"]
    assert (ep.count, ep.warmup_count, ep.cooldown_count) == (2, 4, 0)
    files.client(doc)
    files.close()
    assert assert_plugin_output(tmp_path) == doc
    assert plugin_windows(tmp_path) == windows


def test_late_data_for_closed_windows_still_adds_up(tmp_path):
    agg = RunAggregate()
    agg.start(T0)
    files = RunFiles(tmp_path)
    files.begin(T0)
    rec = Recorder()
    rec.request("GET /x", T0 + 0.1, 5.0, 0, None)
    agg.merge(rec.take_delta(), "w1")
    first = agg.take_closed(T0 + 1)
    assert [w.record.t for w in first] == [T0] and agg.windows == {}
    assert first[0].record.endpoints["GET /x"].count == 1
    files.windows(first)
    rec.request("GET /x", T0 + 0.2, 7.0, 0, "timeout")  # a slow request reported later
    agg.merge(rec.take_delta(), "w1")
    assert list(agg.windows) == [T0]  # the second is open again
    again = agg.take_closed(T0 + 1)
    assert [w.record.t for w in again] == [T0]
    assert again[0].record.endpoints["GET /x"].count == 1  # only the late piece
    assert again[0].record.endpoints["GET /x"].failures == {"timeout": 1}
    files.windows(again)
    merged = hdr.merge([first[0].histograms["GET /x"][0], again[0].histograms["GET /x"][0]])
    assert merged.get_total_count() == 2
    assert merged.get_max_value() == pytest.approx(7_000, rel=1e-3)
    assert merged.get_min_value() == pytest.approx(5_000, rel=1e-3)
    doc = agg.client_doc("2.x", "local", 0)
    assert doc.endpoints["GET /x"].count == 2
    assert doc.endpoints["GET /x"].failures == {"timeout": 1}
    assert hdr.encode(merged) == doc.endpoints["GET /x"].histogram
    files.client(doc)
    files.close()
    assert (tmp_path / "windows.jsonl").read_text().count("\n") == 2  # two lines, one second
    assert_plugin_output(tmp_path)  # readers add them up exactly
    [window] = plugin_windows(tmp_path)
    assert window.t == T0 and window.endpoints["GET /x"].count == 2


def test_pacing_shortfall_and_freshness():
    agg = RunAggregate()
    agg.start(T0)
    rec = Recorder()
    for s in range(10):
        rec.tasks(intended=[T0 + s + 0.0, T0 + s + 0.5])  # 2 intended per second
        rec.tasks(started=T0 + s + 0.1)  # 1 achieved per second
        rec.request("GET /x", T0 + s + 0.1, 3.0, 0, None)
    rec.freshness(T0 + 1, 0.25)
    rec.freshness(T0 + 2, None)
    agg.merge(rec.take_delta(), "local", "local")
    agg.stopping(T0 + 10.5)
    before = agg.pacing()  # nothing closed yet: nothing counted
    assert (before.intended_tasks, before.started_tasks) == (0, 0)
    assert before.intended_rps is None and before.achieved_request_rps == 0.0
    agg.take_closed(math.inf)
    pacing = agg.pacing()
    assert isinstance(pacing, Pacing)
    assert (pacing.intended_tasks, pacing.started_tasks) == (20, 10)
    assert pacing.intended_rps == 2.0 and pacing.achieved_rps == 1.0
    assert pacing.shortfall_ratio == 0.5
    assert pacing.achieved_request_rps == 1.0
    doc = agg.client_doc("2.x", "local", 0)
    assert doc.pacing == pacing
    fresh = doc.checks.freshness
    assert fresh.samples == 1 and fresh.timeouts == 1
    assert hdr.decode(fresh.histogram).get_max_value() == pytest.approx(250_000, rel=1e-3)


def fed(role: str, pid: str, samples, lo=T0, hi=T0 + 100, warnings=0) -> ProcessHealth:
    proc = ProcessHealth(role, pid, cpu_warnings=warnings)
    for t, v in samples:
        proc.add_cpu(t, v, lo, hi)
    return proc


def test_generator_saturation_rule():
    calm_samples = [(T0 + i, 99.0 if i == 5 else 50.0) for i in range(100)]  # 1%: fine
    calm = fed("worker", "w1", calm_samples)
    assert generator_health([calm]).saturated is False
    hot_samples = [(T0 + i, 95.0 if i % 5 == 0 else 40.0) for i in range(100)]  # 20%
    hot = fed("worker", "w2", hot_samples)
    master = fed("master", "zz", [(T0 + i, 5.0) for i in range(100)])
    gen = generator_health([hot, calm, master])
    assert gen.saturated is True and gen.rule == RULE
    assert [p.id for p in gen.processes] == ["zz", "w1", "w2"]  # the master first
    by_id = {p.id: p for p in gen.processes}
    assert by_id["w2"].saturated and not by_id["w1"].saturated and not by_id["zz"].saturated
    assert by_id["w2"].cpu_above_90_share == 0.2 and by_id["w1"].cpu_above_90_share == 0.01
    assert by_id["w2"].cpu_max == 95.0 and by_id["w2"].cpu_p90 == 95.0
    assert by_id["w1"].cpu_max == 99.0 and by_id["w1"].cpu_p90 == 50.0
    assert by_id["w1"].samples == 100
    # only the measured window counts: hot before it (or after the stop) is fine
    before = fed("worker", "w3", [(T0 - 50 + i, 99.0) for i in range(50)]
                 + [(T0 + i, 10.0) for i in range(101)] + [(T0 + 101, 99.0)])
    judged = generator_health([before]).processes[0]
    assert not judged.saturated and judged.samples == 101 and judged.cpu_max == 10.0
    # no sample inside the window: its whole life is judged
    outside = generator_health([fed("worker", "w4", [(T0 - 5, 97.0)] * 3)]).processes[0]
    assert outside.saturated and outside.samples == 3
    # Locust's own warning saturates too, even without samples
    warned = generator_health([fed("master", "m", [], warnings=1)])
    assert warned.saturated is True and warned.processes[0].cpu_max is None


def test_cpu_p90_is_the_nearest_rank_of_the_samples():
    rng = random.Random(4)
    values = [round(rng.uniform(0, 100), 1) for _ in range(537)]
    stats = fed("worker", "w", [(T0 + i, v) for i, v in enumerate(values)], hi=T0 + 1000).inside
    ordered = sorted(values)
    assert stats.p90() == ordered[math.ceil(0.9 * len(ordered)) - 1]
    assert stats.max == max(values) and stats.n == 537
    assert len(stats.values) <= 1001  # bounded by the resolution, not by the run's length


def test_the_aggregate_judges_cpu_samples_over_the_measured_window():
    agg = RunAggregate(warmup_s=2)
    agg.start(T0 + 0.5)  # measured from T0 + 3
    rec = Recorder()
    for i in range(10):
        rec.cpu_sample(T0 + i, 99.0 if i < 3 else 20.0)  # hot only during the warm-up
    agg.merge(rec.take_delta(), "w1")
    agg.cpu_sample("master", "master", T0 + 5, 10.0)
    agg.stopping(T0 + 10)
    agg.take_closed(math.inf)
    gen = agg.client_doc("2.x", "master", 1).generator
    assert gen.saturated is False
    assert {p.id: p.samples for p in gen.processes} == {"master": 1, "w1": 7}


def test_live_progress_from_recent_windows():
    agg = RunAggregate()
    agg.start(T0)
    agg.spawn_complete(T0)
    rec = Recorder()
    for s in range(10):
        for i in range(10):
            rec.request("GET /x", T0 + s + i / 10, 10.0 if i else 100.0, 0,
                        "http_500" if i == 0 and s % 2 else None)
    agg.merge(rec.take_delta(), "local", "local")
    live = agg.live(T0 + 11, horizon=T0 + 10, users=7)
    assert isinstance(live, LiveStatus)
    assert live.phase == "measured" and live.users == 7
    assert live.rps == 10.0 and live.started_at == T0 and live.measure_from == T0
    ep = live.endpoints["GET /x"]
    assert ep.rps == 10.0
    assert ep.error_rate == pytest.approx(3 / 50)  # seconds 5, 7, 9 of 5..9
    assert ep.p95_ms == pytest.approx(100.0, rel=1e-2)
    # what --abort-on judges: counts, exact percentiles, the span, all requests together
    assert (ep.count, ep.failures) == (50, 3)
    assert ep.p50_ms == pytest.approx(10.0, rel=1e-2)
    assert ep.p99_ms == pytest.approx(100.0, rel=1e-2)
    assert ep.max_ms == pytest.approx(100.0, rel=1e-2)
    assert (live.span_from, live.span_to) == (T0 + 5, T0 + 10)
    assert live.total is not None and live.total.count == 50 and live.total.rps == live.rps
    agg.stopping(T0 + 12)
    assert agg.live(T0 + 12, T0 + 10, 7).phase == "stopping"
    assert LiveStatus.model_validate_json(live.model_dump_json()) == live


# ---- in real Locust processes (against a fake API: no stack needed) ------------------

@pytest.mark.e2e
def test_tenant_leak_unexpected_status_and_coordinated_omission(fake_api, tmp_path):
    """The overview returns another tenant's data (slowly), analytics a 500: the leak is
    counted, marked failed and logged at ERROR; the 500 is an unexpected status; users
    that cannot keep their pace show it in the corrected histogram and the shortfall."""
    out = tmp_path / "out"
    proc = run_locust(locust_cmd(
        "scenarios/dashboard.py", fake_api.url, out, fake_api.manifest, users=3, run_time="4s",
        extra=["--harness-pace-scale", "50", "--harness-seed", "3"]), timeout=60)
    assert proc.returncode == 1, proc.output  # Locust's exit code when requests failed
    doc = assert_plugin_output(out)
    assert doc.role == "local" and doc.workers == 0
    overview = doc.endpoints["GET /api/v1/dashboard/overview"]
    analytics = doc.endpoints["GET /api/v1/dashboard/analytics"]
    activity = doc.endpoints["GET /api/v1/activity"]
    assert overview.count > 0 and overview.failures == {"tenant_leak": overview.count}
    every_overview = overview.count + overview.warmup_count + overview.cooldown_count
    assert doc.checks.tenant_leaks == every_overview  # the whole run, not only measured
    assert overview.warmup_failures + overview.cooldown_failures == \
        overview.warmup_count + overview.cooldown_count
    assert "TENANT LEAK on GET /api/v1/dashboard/overview" in proc.output
    assert "ERROR" in proc.output.split("TENANT LEAK", 1)[0].rsplit("\n", 1)[-1]
    assert analytics.failures == {"http_500": analytics.count}
    every_analytics = analytics.count + analytics.warmup_count + analytics.cooldown_count
    assert doc.checks.unexpected_statuses["GET /api/v1/dashboard/analytics"] == {
        "500": every_analytics}
    assert activity.failures == {} and activity.count > 0
    assert activity.x_cache == {"HIT": activity.count}
    assert activity.degraded == activity.count == doc.checks.degraded_responses
    # pace 0.5 x 50 = 25 task starts/s per user (every 40 ms), but half the tasks are an
    # overview taking 200 ms: the users fall further and further behind their schedule
    pacing = doc.pacing
    assert pacing.intended_rps == pytest.approx(3 * 25, rel=0.15)
    assert pacing.shortfall_ratio > 0.3, pacing
    raw, corrected = hdr.decode(overview.histogram), hdr.decode(overview.corrected_histogram)
    assert raw.get_value_at_percentile(50) >= 200_000
    assert corrected.get_value_at_percentile(99) > raw.get_value_at_percentile(99) + 1_000_000
    assert fake_api.hits("GET", "/api/v1/dashboard/overview") == every_overview
    served = sum(fake_api.hits(*key.split(" ", 1)) for key in doc.endpoints)
    windows = plugin_windows(out)  # every request the service saw is in the time series
    assert sum(c.count for w in windows for c in w.endpoints.values()) == served


@pytest.mark.e2e
def test_without_harness_out_nothing_is_written(fake_api, tmp_path):
    cmd = locust_cmd("scenarios/dashboard.py", fake_api.url, None, fake_api.manifest,
                     users=1, run_time="1s",
                     extra=["--exit-code-on-error", "0", "--harness-pace-scale", "10"])
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    proc = run_locust(cmd, timeout=60, cwd=cwd)
    assert proc.returncode == 0, proc.output
    assert list(cwd.iterdir()) == []
    assert fake_api.total_hits() > 0


@pytest.mark.e2e
def test_no_manifest_is_one_clear_error(fake_api, tmp_path):
    proc = run_locust(locust_cmd("scenarios/dashboard.py", fake_api.url, tmp_path / "o", None,
                                 users=1, run_time="2s"), timeout=60)
    assert proc.returncode == 2, proc.output
    assert "no dataset manifest: pass --harness-manifest PATH or set HARNESS_MANIFEST" \
        in proc.output
    assert "Traceback" not in proc.output
    assert fake_api.total_hits() == 0


@pytest.mark.e2e
def test_manifest_from_the_environment(fake_api, tmp_path):
    manifest = write_manifest(tmp_path / "m.json", fake_api.users)
    proc = run_locust(locust_cmd("scenarios/dashboard.py", fake_api.url, tmp_path / "o", None,
                                 users=1, run_time="2s",
                                 extra=["--exit-code-on-error", "0", "--harness-pace-scale", "10"]),
                      timeout=60, env={"HARNESS_MANIFEST": str(manifest)})
    assert proc.returncode == 0, proc.output
    doc = assert_plugin_output(tmp_path / "o")
    assert doc.endpoints and set(doc.endpoints) <= {
        "GET /api/v1/dashboard/overview", "GET /api/v1/dashboard/analytics",
        "GET /api/v1/activity"}
    assert sum(e.count + e.warmup_count + e.cooldown_count for e in doc.endpoints.values()) \
        == fake_api.total_hits() - fake_api.hits("GET", "/metrics")
    # the fake API answers the plugin's /metrics scrapes with 401: no window edges
    assert doc.server_window == {} and not (tmp_path / "o" / "metrics").exists()
