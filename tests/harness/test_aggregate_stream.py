"""RunAggregate streaming closed windows, and RunFiles writing them (pure, no Locust).

The plugin calls `take_closed(horizon - CLOSE_AFTER_S)` every second; these tests do the
same over simulated time and check that the master's memory stays bounded while every
count and histogram still adds up exactly, and that what `RunFiles` streams reads back.
"""

from __future__ import annotations

import math
import random
from collections import Counter

from harness import hdr
from harness.loadgen.aggregate import CLOSE_AFTER_S, ClosedWindow, RunAggregate
from harness.loadgen.output import RunFiles
from harness.loadgen.recorder import Recorder
from harness.model import intervals
from harness.model.client import ClientWindow, load_windows, merge_windows
from tests.harness.conftest import assert_plugin_output, plugin_windows

T0 = 1_700_000_000
KEYS = ("GET /api/v1/dashboard/overview", "GET /api/v1/agents/{agent_id}")


MARGIN = CLOSE_AFTER_S


def test_the_margin_outlasts_the_scenarios_network_timeout():
    assert MARGIN == 35


class Sim:
    """Workers that record into their own Recorder and report once a simulated second."""

    def __init__(self, workers: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.recorders = {f"w{i}": Recorder(clock=lambda: self.now) for i in range(workers)}
        self.now = float(T0)
        self.sent = Counter()  # (phase-free) requests per endpoint
        self.hist = {k: hdr.new_histogram() for k in KEYS}  # every request, raw

    def second(self, late_from: float | None = None) -> None:
        """One second of requests on every worker; sometimes a request that started long
        ago (a slow one) finishes now and is recorded for its start second."""
        for rec in self.recorders.values():
            for _ in range(self.rng.randint(2, 6)):
                key = self.rng.choice(KEYS)
                start = self.now + self.rng.random()
                if late_from is not None and self.rng.random() < 0.05:
                    start = max(late_from, self.now - self.rng.uniform(2, MARGIN + 10))
                ms = self.rng.lognormvariate(3, 0.7)
                failure = "http_500" if self.rng.random() < 0.03 else None
                rec.request(key, start, ms, 10, failure,
                            {"intended_start": start - self.rng.choice((0, 0, 0.02)),
                             "task_start": start})
                self.sent[key] += 1
                hdr.record(self.hist[key], ms * 1000)
        self.now += 1.0

    def deltas(self, final: bool = False):
        return [(name, rec.take_delta(final=final)) for name, rec in self.recorders.items()]


def horizon(agg: RunAggregate) -> float:
    """As the plugin computes it: everything before this has been merged from everyone."""
    return min(p.last_horizon for p in agg.processes.values())


def test_ten_minutes_stay_bounded_and_exact(tmp_path):
    sim = Sim(workers=3, seed=11)
    agg = RunAggregate(warmup_s=10)
    agg.start(T0 + 0.3)
    files = RunFiles(tmp_path)
    files.begin(T0 + 0.3)
    handed: list[ClosedWindow] = []
    most_open = 0
    for s in range(600):
        if s == 5:
            agg.spawn_complete(sim.now + 0.2)
        sim.second(late_from=T0 + 0.3)
        agg.set_users(sim.now - 0.5, 30)
        for name, delta in sim.deltas():
            agg.merge(delta, name)
        closed = agg.take_closed(horizon(agg) - MARGIN)
        files.windows(closed)
        handed.extend(closed)
        most_open = max(most_open, len(agg.windows))
        assert len(agg.windows) <= MARGIN + 3, (s, len(agg.windows))
    assert most_open >= MARGIN - 1  # the windows within the margin really stay open
    agg.stopping(sim.now)
    sim.second()  # the users' last requests after the stop: the cool-down
    for name, delta in sim.deltas(final=True):
        agg.merge(delta, name)
    agg.ended_at = sim.now
    closed = agg.take_closed(math.inf)
    files.windows(closed)
    handed.extend(closed)
    assert agg.windows == {}
    doc = agg.client_doc("2.x", "master", 3)
    files.client(doc)
    files.close()

    # every request is in exactly one phase of the totals, and in the handed-over windows
    for key in KEYS:
        ep = doc.endpoints[key]
        assert ep.count + ep.warmup_count + ep.cooldown_count == sim.sent[key]
        assert ep.warmup_count > 0 and ep.cooldown_count > 0 and ep.count > 0
        assert sum(w.record.endpoints[key].count for w in handed
                   if key in w.record.endpoints) == sim.sent[key]
        every = hdr.merge(w.histograms[key][0] for w in handed if key in w.histograms)
        assert hdr.encode(every) == hdr.encode(sim.hist[key])
    late = Counter(w.record.t for w in handed)
    assert max(late.values()) >= 2  # some seconds were re-opened by very late requests
    assert sum(p.requests for p in agg.processes.values()) == sum(sim.sent.values())
    # and what was streamed to disk says the same
    assert assert_plugin_output(tmp_path) == doc
    windows = plugin_windows(tmp_path)
    assert [w.t for w in windows] == list(range(T0, T0 + 601))
    assert [w.phase for w in windows[:6]] == ["ramp"] * 6
    assert {w.phase for w in windows[6:11]} == {"warmup"}
    assert {w.phase for w in windows[11:600]} == {"measured"}
    assert windows[600].phase == "cooldown"
    assert files.windows_written == len(handed)


def test_many_workers_stream_the_same_windows_as_one_process():
    """Three workers reporting in any order and the master closing windows as it goes hand
    over exactly the windows (counts, failures, histograms) one process would."""
    rng = random.Random(5)
    samples = [(rng.choice(KEYS), T0 + rng.random() * 60, rng.lognormvariate(3, 0.8),
                rng.random() < 0.05) for _ in range(6000)]
    samples.sort(key=lambda s: s[1])

    def feed(rec: Recorder, part) -> None:
        for key, t, ms, failed in part:
            rec.request(key, t, ms, 0, "timeout" if failed else None,
                        {"intended_start": t - 0.01, "task_start": t})

    single = RunAggregate(warmup_s=5)
    single.start(T0 + 0.5)
    one = Recorder()
    feed(one, samples)
    single.merge(one.take_delta(), "local", "local")
    single.stopping(T0 + 59.5)
    expected = single.take_closed(math.inf)

    workers = RunAggregate(warmup_s=5)
    workers.start(T0 + 0.5)
    recs = [Recorder() for _ in range(3)]
    got: list[ClosedWindow] = []
    for second in range(60):
        part = [s for s in samples if T0 + second <= s[1] < T0 + second + 1]
        reports = []
        for i, rec in enumerate(recs):
            feed(rec, part[i::3])
            reports.append((f"w{i}", rec.take_delta()))
        rng.shuffle(reports)
        for name, delta in reports:
            workers.merge(delta, name)
        got.extend(workers.take_closed(T0 + second - 10))  # a margin of 10 s
    workers.stopping(T0 + 59.5)
    got.extend(workers.take_closed(math.inf))

    assert [w.record for w in got] == [w.record for w in expected]
    assert len(expected) == 60
    for a, b in zip(got, expected, strict=True):
        for key in b.histograms:
            for i in (0, 1):
                assert hdr.encode(a.histograms[key][i]) == hdr.encode(b.histograms[key][i])
    assert workers.client_doc("2.x", "master", 3).endpoints == \
        single.client_doc("2.x", "local", 0).endpoints


def test_run_files_stream_windows_that_load_back(tmp_path):
    rng = random.Random(8)
    agg = RunAggregate(warmup_s=1)
    agg.start(T0)
    agg.spawn_complete(T0 + 0.5)
    rec = Recorder()
    for s in range(4):
        for _ in range(20):
            rec.request(rng.choice(KEYS), T0 + s + rng.random(), rng.lognormvariate(3, 1), 5,
                        rng.choice((None, None, "http_503")))
    agg.merge(rec.take_delta(), "local", "local")
    agg.stopping(T0 + 3.5)
    closed = agg.take_closed(math.inf)
    files = RunFiles(tmp_path / "run")
    files.begin(T0 + 0.1)
    files.windows(closed[:2])
    files.windows([])  # nothing to write
    files.windows(closed[2:])
    assert files.windows_written == len(closed) == 4

    back = load_windows(tmp_path / "run" / "windows.jsonl")  # readable while the test runs
    assert back == [w.record for w in closed]
    log = intervals.load(tmp_path / "run" / "windows.hlog")
    assert len(log.entries) == 2 * sum(len(w.histograms) for w in closed)
    for w in closed:
        for key, (raw, corrected) in w.histograms.items():
            assert hdr.encode(log.histogram(key, w.record.t, "raw")) == hdr.encode(raw)
            assert hdr.encode(log.histogram(key, w.record.t, "corrected")) == \
                hdr.encode(corrected)
            assert raw.get_total_count() == w.record.endpoints[key].count

    files.live(agg.live(T0 + 4, T0 + 4, 1))
    files.scrape("start", "up 1\n")
    files.client(agg.client_doc("2.x", "local", 0))
    files.close()
    files.close()  # twice is fine
    doc = assert_plugin_output(tmp_path / "run")
    assert sum(e.count + e.warmup_count for e in doc.endpoints.values()) == 80
    assert (tmp_path / "run" / "metrics" / "window-start.prom").read_text() == "up 1\n"
    assert not list((tmp_path / "run").rglob("*.tmp")) and not list(
        (tmp_path / "run").rglob(".*.tmp"))

    files.begin(T0 + 100)  # a new test in the same directory starts the series afresh
    files.close()
    assert load_windows(tmp_path / "run" / "windows.jsonl") == []
    assert intervals.load(tmp_path / "run" / "windows.hlog").entries == {}


def test_a_window_cut_short_by_a_killed_writer_is_dropped(tmp_path):
    w = ClientWindow(t=T0, phase="measured")
    path = tmp_path / "windows.jsonl"
    path.write_text(w.model_dump_json() + "\n" + w.model_dump_json()[:10])
    assert load_windows(path) == [w]
    assert merge_windows(load_windows(path)) == [w]


def cool_down_with_a_pause() -> tuple[RunAggregate, list[ClosedWindow]]:
    """Stopped at T0+4.2; the users' last requests start at T0+5.5 and, after a pause in
    their task, at T0+7.5: nothing starts in second T0+6."""
    agg = RunAggregate()
    agg.start(T0 + 0.5)
    agg.spawn_complete(T0 + 0.5)
    rec = Recorder()
    rec.request("GET /x", T0 + 1.5, 1.0, 0, None)
    agg.merge(rec.take_delta(), "local", "local")
    agg.stopping(T0 + 4.2)
    rec.request("GET /x", T0 + 5.5, 1.0, 0, None)
    rec.request("GET /x", T0 + 7.5, 1.0, 0, "timeout")
    agg.merge(rec.take_delta(final=True), "local", "local")
    agg.ended_at = T0 + 8
    return agg, agg.take_closed(math.inf)


def test_cool_down_windows_are_counted_apart():
    agg, closed = cool_down_with_a_pause()
    by_t = {w.record.t - T0: w.record for w in closed}
    assert [t for t in by_t if t <= 5] == [0, 1, 2, 3, 4, 5]
    assert [by_t[t].phase for t in range(5)] == ["measured"] * 5
    assert by_t[5].phase == by_t[7].phase == "cooldown"
    ep = agg.client_doc("2.x", "local", 0).endpoints["GET /x"]
    assert (ep.count, ep.cooldown_count, ep.cooldown_failures) == (1, 2, 1)
    assert ep.failures == {}


def test_cool_down_seconds_without_requests_are_handed_over():
    _, closed = cool_down_with_a_pause()
    assert [w.record.t - T0 for w in closed] == list(range(8))
    assert [w.record.phase for w in closed[5:]] == ["cooldown"] * 3


def test_phase_of_each_window_is_fixed_once_counted():
    """A late piece of a warm-up second reopens it as warm-up (never measured): the
    window and the totals agree on its phase."""
    agg = RunAggregate(warmup_s=2)
    agg.start(T0 + 0.2)
    rec = Recorder()
    rec.request("GET /x", T0 + 1.5, 1.0, 0, None)
    agg.merge(rec.take_delta(), "w1")
    first = agg.take_closed(T0 + 2)
    assert [(w.record.t - T0, w.record.phase) for w in first] == [(0, "ramp"), (1, "ramp")]
    agg.spawn_complete(T0 + 1.0)
    rec.request("GET /x", T0 + 1.7, 1.0, 0, None)  # late
    rec.request("GET /x", T0 + 3.1, 1.0, 0, None)
    agg.merge(rec.take_delta(), "w1")
    again = agg.take_closed(T0 + 4)
    assert [(w.record.t - T0, w.record.phase) for w in again] == [
        (1, "warmup"), (2, "warmup"), (3, "measured")]
    ep = agg.client_doc("2.x", "local", 0).endpoints["GET /x"]
    assert (ep.count, ep.warmup_count) == (1, 2)


def test_each_second_says_how_many_writes_became_visible_and_how_many_timed_out():
    from harness.model.client import DeltaWindow

    agg = RunAggregate(warmup_s=0)
    agg.started_at = T0
    fresh = hdr.new_histogram()
    for lag_s in (0.2, 0.4):
        hdr.record(fresh, lag_s * 1e6)
    agg._merge_window(DeltaWindow(t=T0 + 3, freshness=hdr.encode(fresh),
                                  freshness_timeouts=1))
    record = agg._close(T0 + 3).record
    assert (record.freshness_visible, record.freshness_timeouts) == (2, 1)
    assert agg._close(T0 + 4).record.freshness_visible == 0  # measured, none: 0, not None
