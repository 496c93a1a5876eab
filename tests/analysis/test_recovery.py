"""Recovery figures on synthetic runs whose truth is known (harness.analysis.recovery)."""

from __future__ import annotations

from harness import hdr
from harness.analysis.recovery import SecondFreshness, recoveries, recovery
from harness.model.chaos import FaultRecord, parse_fault
from harness.model.client import ClientWindow, WindowCell
from harness.model.server import ServerSample

T0 = 1_700_000_000  # the measured window's first second
N = 40  # measured seconds


def run(failures: dict[int, dict[str, int]] | None = None,
        latency_ms: dict[int, float] | None = None, requests: int = 100,
        silent: set[int] = frozenset()):
    """N measured seconds of `requests` each at 10 ms, except where told (second
    offsets from T0): failures by kind, another latency, no request at all."""
    failures, latency_ms = failures or {}, latency_ms or {}
    windows, latency = [], {}
    for k in range(N):
        t = T0 + k
        n = 0 if k in silent else requests
        windows.append(ClientWindow(t=t, phase="measured", endpoints={
            "GET /a": WindowCell(count=n, failures=failures.get(k, {}))}))
        if n:
            h = hdr.new_histogram()
            hdr.record(h, latency_ms.get(k, 10.0) * 1000, n)
            latency[t] = h
    warm = ClientWindow(t=T0 - 1, phase="warmup",
                        endpoints={"GET /a": WindowCell(count=5, failures={"http_500": 5})})
    return [warm, *windows], latency


def fault(text: str, start: float, end: float | None = None) -> FaultRecord:
    return FaultRecord(spec=parse_fault(text), started_at=T0 + start,
                       ended_at=T0 + (start if end is None else end))


def test_a_fault_with_no_effect_recovers_at_once():
    windows, latency = run()
    r = recovery(fault("db-disconnect@20s", 20.4), [], windows, latency)
    assert r.failures == {}
    assert r.requests_during == 100  # its own second only
    assert r.first_success_s == 0.0
    assert r.pre_fault_p95_ms is not None and 9.9 <= r.pre_fault_p95_ms <= 10.1
    assert r.p95_recovered_s == 0.0


def test_failures_that_stop_two_seconds_after_the_end():
    # paused 20..25; requests fail until second 27 included, then none
    fails = {k: {"timeout": 30} for k in range(20, 28)}
    windows, latency = run(fails, {k: 900.0 for k in range(20, 28)})
    r = recovery(fault("db-pause@20s:5s", 20.0, 25.0), [], windows, latency)
    assert r.failures == {"timeout": 30 * 8}  # 20..27, the warm-up's failures not counted
    assert r.requests_during == 100 * 8
    assert r.first_success_s == 0.0  # 70 of second 25's requests succeeded
    # second 30 is the first whose rolling 3 s (28..30) holds no slow second
    assert r.p95_recovered_s == 5.0


def test_a_clean_second_the_fault_was_active_in_does_not_end_it():
    # a single-worker target killed at 20.7 and back at 22.3: second 20's requests all
    # started before the kill and succeeded, 21 and 22 were refused, 23 is clean
    fails = {21: {"connection": 100}, 22: {"connection": 60}}
    windows, latency = run(fails)
    r = recovery(fault("target-kill@20s", 20.7, 22.3), [], windows, latency)
    assert r.failures == {"connection": 160}
    assert r.requests_during == 300  # seconds 20..22
    # an instantaneous fault's own second, clean, does not end it either: the failures
    # that follow it at once are its own
    r = recovery(fault("db-disconnect@20s", 20.7), [], windows, latency)
    assert r.failures == {"connection": 160} and r.requests_during == 300


def test_first_success_waits_for_a_second_with_a_success():
    fails = {k: {"connection": 100} for k in range(20, 24)}
    windows, latency = run(fails)
    r = recovery(fault("db-restart@20s", 20.5), [], windows, latency)
    assert r.first_success_s == 3.5  # second 24 (20.5 -> 24.0)
    assert r.failures == {"connection": 400}


def test_a_second_without_requests_is_not_a_recovery():
    windows, latency = run(silent=set(range(20, 23)))
    r = recovery(fault("target-kill@20s", 20.0), [], windows, latency)
    assert r.first_success_s == 3.0
    assert r.p95_recovered_s == 3.0


def test_p95_that_never_recovers_is_none():
    windows, latency = run(latency_ms={k: 50.0 for k in range(20, N)})
    r = recovery(fault("stub:slow@20s:5s", 20.0, 25.0), [], windows, latency)
    assert r.first_success_s == 0.0
    assert r.p95_recovered_s is None
    assert r.failures == {}


def test_a_brief_dip_back_is_not_a_recovery():
    # clean at second 25, slow again at 26, clean from 27 on
    slow = {k: 80.0 for k in (*range(20, 25), 26)}
    windows, latency = run(latency_ms=slow)
    r = recovery(fault("db-pause@20s:5s", 20.0, 25.0), [], windows, latency)
    # second 25 alone was within bounds but did not stay so; 29 is the first whose
    # rolling window (27..29) and the next two are all clean
    assert r.p95_recovered_s == 4.0


def test_within_twenty_percent_counts_as_recovered():
    windows, latency = run(latency_ms={k: 11.5 for k in range(20, N)})
    r = recovery(fault("db-pause@20s:2s", 20.0, 22.0), [], windows, latency)
    assert r.p95_recovered_s == 0.0  # 11.5 ms is within 1.2 x 10 ms


def test_a_fault_at_the_start_has_no_baseline():
    windows, latency = run()
    r = recovery(fault("db-disconnect@0s", 0.0), [], windows, latency)
    assert r.pre_fault_p95_ms is None and r.p95_recovered_s is None
    assert r.first_success_s == 0.0


def test_never_injected_has_no_figures():
    windows, latency = run()
    never = FaultRecord(spec=parse_fault("db-restart@20s"), ok=False, error="ended")
    assert recovery(never, [], windows, latency) is None


def test_overlapping_faults_keep_each_other_out_of_the_baseline():
    # a pause 10..15 makes everything slow; a stub fault from 12 to 18 adds failures
    slow = {k: 200.0 for k in range(10, 16)}
    fails = {k: {"http_503": 10} for k in range(12, 19)}
    windows, latency = run(fails, slow)
    pause = fault("db-pause@10s:5s", 10.0, 15.0)
    stub = fault("stub:outage@12s:6s", 12.0, 18.0)
    out = recoveries([pause, stub], windows, latency)
    p, s = out[0].recovery, out[1].recovery
    # the stub's baseline is seconds 2..9: the pause's slow seconds are left out
    assert s.pre_fault_p95_ms is not None and s.pre_fault_p95_ms < 11
    assert p.pre_fault_p95_ms is not None and p.pre_fault_p95_ms < 11
    # the pause's span runs on while the stub keeps failing: both count those failures
    assert p.failures == {"http_503": 70} and s.failures == {"http_503": 70}
    assert s.first_success_s == 0.0 and s.p95_recovered_s == 0.0
    assert pause.recovery is None  # the input is left as it was


def test_degraded_responses_come_from_the_server_series():
    windows, latency = run({k: {"timeout": 1} for k in range(20, 23)})
    series = [ServerSample(t=T0 + k, since=T0 + k - 2, phase="measured",
                           upstream_fallbacks={"cache": 3.0, "unavailable": 1.0,
                                               "live": 50.0})
              for k in range(2, N, 2)]
    r = recovery(fault("stub:outage@20s:2s", 20.0, 22.0), [], windows, latency, series)
    # span 20..22 (23 is clean): the scrapes at 22 (20..22] and 24 (22..24] overlap it
    assert r.degraded_during == 8


def test_freshness_when_it_is_recorded_per_second():
    windows, latency = run()
    fresh = {T0 + k: SecondFreshness(visible=1) for k in range(N)}
    for k in range(20, 27):
        fresh[T0 + k] = SecondFreshness(timeouts=1)
    r = recovery(fault("db-restart@20s", 20.0), [], windows, latency, freshness=fresh)
    assert r.freshness_timeouts_during == 1  # the span is second 20 only: no failures
    assert r.write_visible_again_s == 7.0
    without = recovery(fault("db-restart@20s", 20.0), [], windows, latency)
    assert without.freshness_timeouts_during is None and without.write_visible_again_s is None
