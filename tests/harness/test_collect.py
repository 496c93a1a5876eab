"""collect.build: the run record is exactly what its windows, log and scrapes add up to.

The builder (`tests/builders.py`) makes the inputs the way a run does; these
tests check the assembly against them, figure by figure.
"""

from __future__ import annotations

import pytest

from harness import hdr
from harness.analysis import collect
from harness.model.client import ClientDoc, ClientEndpoint, ClientWindow, WindowCell
from harness.model.endpoint import interval_tag
from harness.model.latency import Latency
from tests.builders import T0, Burst, EndpointSpec, LogNormal, build_run

OVERVIEW = "GET /api/v1/dashboard/overview"
AGENTS = "GET /api/v1/agents"
AGENT = "GET /api/v1/agents/{agent_id}"
PERCENTILES = (1, 10, 25, 50, 75, 90, 95, 99, 99.9, 100)


@pytest.fixture(scope="module")
def run():
    return build_run({
        OVERVIEW: EndpointSpec(rps=20, latency_ms=LogNormal(30, 0.4), failures={"http_500": 0.05},
                               corrected_extra_ms=5.0),
        AGENTS: EndpointSpec(rps=5, latency_ms=LogNormal(80, 0.2), server_missing=3,
                             bursts=(Burst(at_s=20, seconds=5, latency_factor=4),)),
        AGENT: EndpointSpec(rps=2.5, failures={"http_503": 0.1, "tenant_leak": 0.02}),
    }, seconds=60, warmup_s=10, ramp_s=2, cooldown_s=2, seed=3)


def same_histogram(a: hdr.HdrHistogram, b: hdr.HdrHistogram) -> None:
    assert a.get_total_count() == b.get_total_count()
    assert a.get_min_value() == b.get_min_value() and a.get_max_value() == b.get_max_value()
    for p in PERCENTILES:
        assert a.get_value_at_percentile(p) == b.get_value_at_percentile(p), p
    assert hdr.encode(a) == hdr.encode(b)


def test_the_builder_spans_the_phases_it_was_asked_for(run):
    phases = [w.phase for w in run.result.windows.seconds]
    assert phases == ["ramp"] * 2 + ["warmup"] * 8 + ["measured"] * 60 + ["cooldown"] * 2
    assert run.result.windows.seconds[0].t == T0
    assert run.seconds() == list(range(T0 + 10, T0 + 70))
    assert run.result.windows.interval_log == "windows.hlog"
    assert run.result.windows.tags[AGENT] == {
        "raw": "raw:GET:/api/v1/agents/{agent_id}",
        "corrected": "corrected:GET:/api/v1/agents/{agent_id}"}


@pytest.mark.parametrize("key, rps, warm, cool", [(OVERVIEW, 20, 200, 40), (AGENTS, 5, 50, 10),
                                                  (AGENT, 2.5, 25, 5)])
def test_measured_windows_add_up_to_the_endpoint_counts(run, key, rps, warm, cool):
    e = run.result.endpoints[key]
    by_phase: dict[str, int] = {}
    for w in run.result.windows.seconds:
        cell = w.endpoints.get(key)
        by_phase[w.phase] = by_phase.get(w.phase, 0) + (cell.count if cell else 0)
    assert e.count == rps * 60 == by_phase["measured"]
    assert e.warmup_count == warm == by_phase["ramp"] + by_phase["warmup"]
    assert e.cooldown_count == cool == by_phase["cooldown"]
    failures: dict[str, int] = {}
    for w in run.result.windows.seconds:
        if w.phase == "measured" and key in w.endpoints:
            for kind, n in w.endpoints[key].failures.items():
                failures[kind] = failures.get(kind, 0) + n
    assert e.failures == failures


def test_failures_and_failure_rates_follow_the_shares(run):
    overview, agent = run.result.endpoints[OVERVIEW], run.result.endpoints[AGENT]
    assert overview.failures == {"http_500": 60}  # 5% of 1,200
    assert overview.failure_rate == 0.05
    assert agent.failures == {"http_503": 15, "tenant_leak": 3}  # 10% and 2% of 150
    assert agent.failure_rate == 0.12
    agents = run.result.endpoints[AGENTS]
    assert agents.failures == {} and agents.failure_rate == 0
    # tenant leaks are counted over the whole run (here all three fell in the measured window)
    assert run.result.correctness.tenant_leaks == 3 == sum(
        c.failures.get("tenant_leak", 0) for w in run.windows for c in w.endpoints.values())


@pytest.mark.parametrize("key", [OVERVIEW, AGENTS, AGENT])
@pytest.mark.parametrize("kind", ["raw", "corrected"])
def test_endpoint_histogram_is_the_merge_of_its_measured_windows(run, key, kind):
    e = run.result.endpoints[key]
    whole = hdr.decode(e.histogram if kind == "raw" else e.corrected_histogram)
    same_histogram(whole, run.log.merged(key, run.seconds(), kind))
    assert Latency.of(whole) == (e.latency_ms if kind == "raw" else e.corrected_latency_ms)
    # and not the whole run's: warm-up and cool-down windows stay out
    everything = run.log.merged(key, [w.t for w in run.windows], kind)
    assert everything.get_total_count() == e.count + e.warmup_count + e.cooldown_count


def test_corrected_latency_is_the_raw_one_plus_the_wait(run):
    e = run.result.endpoints[OVERVIEW]
    assert e.corrected_latency_ms.count == e.latency_ms.count == 1200
    assert e.corrected_latency_ms.p50 == pytest.approx(e.latency_ms.p50 + 5.0, rel=2e-3)


def test_a_burst_shows_in_its_windows_only(run):
    burst = run.log.merged(AGENTS, range(T0 + 30, T0 + 35))
    before = run.log.merged(AGENTS, range(T0 + 10, T0 + 30))
    ratio = burst.get_value_at_percentile(50) / before.get_value_at_percentile(50)
    assert 3.0 < ratio < 5.3  # latency x4 in those 5 seconds (25 samples each side of 4)


def test_totals_merge_every_endpoint(run):
    r = run.result
    assert r.totals.method == "ALL" and r.totals.route == "*"
    assert r.totals.count == 1200 + 300 + 150
    assert r.totals.failures == {"http_500": 60, "http_503": 15, "tenant_leak": 3}
    assert r.totals.failure_rate == round(78 / 1650, 6)
    assert r.totals.warmup_count == 275 and r.totals.cooldown_count == 55
    same_histogram(hdr.decode(r.totals.histogram),
                   hdr.merge(run.log.merged(k, run.seconds()) for k in r.endpoints))
    same_histogram(hdr.decode(r.totals.corrected_histogram),
                   hdr.merge(e.corrected_histogram for e in r.endpoints.values()))


def test_throughput_is_count_over_the_measured_seconds(run):
    assert run.client.stopping_at - run.client.measure_from == 60.0
    assert collect.measured_seconds(run.client) == 60.0
    assert [run.result.endpoints[k].throughput_rps for k in (OVERVIEW, AGENTS, AGENT)] == [
        20.0, 5.0, 2.5]
    assert run.result.totals.throughput_rps == 27.5


def test_throughput_window_ends_when_stopping_began_not_when_the_test_ended(run):
    h = hdr.new_histogram()
    hdr.record(h, 1000, 90)
    client = ClientDoc(locust_version="2", role="local", started_at=100.0, measure_from=110.0,
                       stopping_at=140.0, ended_at=150.0,
                       endpoints={OVERVIEW: ClientEndpoint(count=90, histogram=hdr.encode(h),
                                                           corrected_histogram=hdr.encode(h))})
    result = collect.build(run.result.run, client, [], None)
    assert result.endpoints[OVERVIEW].throughput_rps == 3.0  # 90 / 30 s, not 90 / 40 s


def test_agreement_counts_cooldown_requests_on_the_client_side(run):
    r = run.result
    client_count = 1650 + 55  # measured + cool-down
    assert r.agreement.client_count == client_count
    assert r.agreement.server_count == client_count - 3  # three agents requests never arrived
    assert r.agreement.diff_ratio == round(3 / client_count, 6)
    assert r.endpoints[AGENTS].server_count == 300 + 10 - 3
    assert r.endpoints[OVERVIEW].server_count == 1200 + 40
    assert r.totals.server_count == client_count - 3


def test_server_side_is_summarized_from_the_scrapes(run):
    server = run.result.server
    assert set(server.routes) == {OVERVIEW, AGENTS, AGENT}
    assert server.routes[OVERVIEW].errors_5xx == 60 + 2  # measured and cool-down 500s
    assert server.routes[AGENT].errors_5xx == 15 + 1
    assert server.failed_scrapes == []
    measured = [row for row in server.series if row.phase == "measured"]
    for key in (OVERVIEW, AGENTS, AGENT):
        assert sum(row.requests.get(key, 0) for row in measured) == server.routes[key].count
    assert run.result.run.target.profile == "optimized"
    assert run.result.run.target.toggles["response_cache"] is True


def test_agreement_is_exact_for_a_chosen_server_count():
    built = build_run({OVERVIEW: EndpointSpec(rps=10, server_missing=7)}, seconds=10,
                      warmup_s=2, cooldown_s=1, seed=5, profile="naive",
                      toggles={"response_cache": True})
    a = built.result.agreement
    assert (a.client_count, a.server_count, a.diff_ratio) == (110, 103, round(7 / 110, 6))
    # the target settings come from the window-start scrape, toggles as the service says
    target = built.result.run.target
    assert target.profile == "naive" and target.settings == {"pool_max_size": "10",
                                                             "workers": "1"}
    assert target.toggles["response_cache"] is True and target.toggles["kpi_view"] is False


def test_an_endpoint_without_requests_builds():
    built = build_run({OVERVIEW: EndpointSpec(rps=4), AGENTS: EndpointSpec(rps=0)}, seconds=5,
                      warmup_s=1, seed=2)
    idle = built.result.endpoints[AGENTS]
    assert (idle.count, idle.failure_rate, idle.throughput_rps) == (0, 0.0, 0.0)
    assert idle.latency_ms == Latency(count=0)
    assert hdr.decode(idle.histogram).get_total_count() == 0
    assert idle.server_count == 0
    assert built.result.totals.count == 20
    assert all(AGENTS not in w.endpoints for w in built.result.windows.seconds)
    assert AGENTS in built.result.windows.tags


def test_a_run_without_a_server_side_builds():
    built = build_run({OVERVIEW: EndpointSpec(rps=3)}, seconds=5, warmup_s=1, server=False)
    r = built.result
    assert r.server is None and r.run.target is None
    assert r.endpoints[OVERVIEW].server_count is None and r.totals.server_count is None
    assert (r.agreement.client_count, r.agreement.server_count, r.agreement.diff_ratio) == (
        18, None, None)


def test_lines_of_the_same_second_are_added():
    h = hdr.new_histogram()
    hdr.record(h, 2000, 3)
    lines = [ClientWindow(t=5, phase="measured", users=2, tasks_started=2,
                          endpoints={OVERVIEW: WindowCell(count=2, failures={"http_500": 1})}),
             ClientWindow(t=6, phase="measured", endpoints={OVERVIEW: WindowCell(count=4)}),
             ClientWindow(t=5, phase="measured", users=3, tasks_started=1,
                          endpoints={OVERVIEW: WindowCell(count=1, failures={"http_500": 1}),
                                     AGENTS: WindowCell(count=7)})]
    w = collect.windows(lines, [OVERVIEW], "x.hlog")
    assert [s.t for s in w.seconds] == [5, 6]
    first = w.seconds[0]
    assert (first.users, first.tasks_started) == (3, 3)
    assert first.endpoints[OVERVIEW] == WindowCell(count=3, failures={"http_500": 2})
    assert first.endpoints[AGENTS].count == 7
    assert set(w.tags) == {OVERVIEW, AGENTS}
    assert w.tags[AGENTS]["raw"] == interval_tag(AGENTS, "raw")


# ---- the builder's knobs, which the gate's tests will lean on --------------------------

def test_the_same_seed_builds_the_same_run_and_another_seed_another():
    spec = {OVERVIEW: EndpointSpec(rps=5, latency_ms=LogNormal(20, 0.3))}
    a, b = (build_run(spec, seconds=4, warmup_s=1, seed=9) for _ in range(2))
    assert a.result == b.result and a.log.entries == b.log.entries
    c = build_run(spec, seconds=4, warmup_s=1, seed=10)
    assert c.result.endpoints[OVERVIEW].count == a.result.endpoints[OVERVIEW].count == 20
    assert c.result.endpoints[OVERVIEW].histogram != a.result.endpoints[OVERVIEW].histogram


def test_drift_bursts_and_per_window_latency_shape_the_windows():
    built = build_run({
        OVERVIEW: EndpointSpec(rps=10, latency_ms=LogNormal(10, 0.05), drift=0.05),
        AGENTS: EndpointSpec(rps=4, latency_ms=lambda k: LogNormal(10 if k < 10 else 40, 0.05),
                             bursts=(Burst(at_s=2, seconds=3, rps_factor=2.5),)),
    }, seconds=20, warmup_s=2, ramp_s=0, cooldown_s=0, server=False, profile="naive", seed=8)
    m = built.seconds()

    def median(key, seconds):
        return built.log.merged(key, seconds).get_value_at_percentile(50) / 1000

    assert median(OVERVIEW, m[:1]) == pytest.approx(10, rel=0.1)
    assert median(OVERVIEW, m[-1:]) == pytest.approx(10 * (1 + 0.05 * 19), rel=0.1)
    assert median(AGENTS, m[:10]) == pytest.approx(10, rel=0.1)
    assert median(AGENTS, m[10:]) == pytest.approx(40, rel=0.1)
    counts = [built.log.histogram(AGENTS, t).get_total_count() for t in m[:6]]
    assert counts == [4, 4, 10, 10, 10, 4]
    assert built.result.endpoints[AGENTS].count == 4 * 20 + 3 * 6
    assert built.result.run.profile == "naive" and built.result.run.target is None
