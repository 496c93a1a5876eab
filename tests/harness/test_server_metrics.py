
"""server_metrics: what the service's own /metrics say about a window, from handwritten scrapes.

Six scrapes of one exposition template (the metric names the target really
exports), cumulative as Prometheus counters are: one before the window, the
window's two edges, two periodic ones inside it (one more fails), and one after.
Every expected figure below is worked out by hand from these numbers.
"""

from __future__ import annotations

import pytest

from harness.analysis import exposition
from harness.analysis import server_metrics as sm
from harness.analysis.server_metrics import Scrape
from harness.model.server import FailedScrape

AGENTS, OVERVIEW = "GET /api/v1/agents", "GET /api/v1/dashboard/overview"

TEMPLATE = """\
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{{method="GET",route="/api/v1/agents",status="200",le="0.01"}} {a_fast}
http_request_duration_seconds_bucket{{method="GET",route="/api/v1/agents",status="200",le="0.1"}} {a_mid}
http_request_duration_seconds_bucket{{method="GET",route="/api/v1/agents",status="200",le="+Inf"}} {a_ok}
http_request_duration_seconds_count{{method="GET",route="/api/v1/agents",status="200"}} {a_ok}
http_request_duration_seconds_sum{{method="GET",route="/api/v1/agents",status="200"}} 1.5
http_request_duration_seconds_bucket{{method="GET",route="/api/v1/agents",status="500",le="0.01"}} 0
http_request_duration_seconds_bucket{{method="GET",route="/api/v1/agents",status="500",le="0.1"}} {a_500}
http_request_duration_seconds_bucket{{method="GET",route="/api/v1/agents",status="500",le="+Inf"}} {a_500}
http_request_duration_seconds_count{{method="GET",route="/api/v1/agents",status="500"}} {a_500}
http_request_duration_seconds_sum{{method="GET",route="/api/v1/agents",status="500"}} 0.2
http_request_duration_seconds_bucket{{method="GET",route="/api/v1/dashboard/overview",status="200",le="0.01"}} {o_ok}
http_request_duration_seconds_bucket{{method="GET",route="/api/v1/dashboard/overview",status="200",le="0.1"}} {o_ok}
http_request_duration_seconds_bucket{{method="GET",route="/api/v1/dashboard/overview",status="200",le="+Inf"}} {o_ok}
http_request_duration_seconds_count{{method="GET",route="/api/v1/dashboard/overview",status="200"}} {o_ok}
http_request_duration_seconds_sum{{method="GET",route="/api/v1/dashboard/overview",status="200"}} 0.1
# TYPE cache_hits_total counter
cache_hits_total{{cache="overview"}} {hits_ov}
cache_hits_total{{cache="auth"}} {hits_auth}
# TYPE cache_misses_total counter
cache_misses_total{{cache="overview"}} {miss_ov}
cache_misses_total{{cache="auth"}} 0
# TYPE cache_stale_hits_total counter
cache_stale_hits_total{{cache="overview"}} {stale_ov}
cache_stale_hits_total{{cache="auth"}} 0
# TYPE cache_evictions_total counter
cache_evictions_total{{cache="overview",cause="ttl"}} {ev_ttl}
cache_evictions_total{{cache="overview",cause="invalidation"}} {ev_inv}
# TYPE elevenlabs_requests_total counter
elevenlabs_requests_total{{result="success"}} {up_ok}
elevenlabs_requests_total{{result="failure"}} {up_fail}
# TYPE elevenlabs_attempts_total counter
elevenlabs_attempts_total {attempts}
# TYPE elevenlabs_retries_total counter
elevenlabs_retries_total{{reason="server_error"}} {retry_5xx}
elevenlabs_retries_total{{reason="rate_limited"}} {retry_429}
# TYPE elevenlabs_failures_total counter
elevenlabs_failures_total{{reason="timeout"}} {up_fail}
# TYPE elevenlabs_timeouts_total counter
elevenlabs_timeouts_total{{kind="attempt"}} {timeouts}
elevenlabs_timeouts_total{{kind="deadline"}} 0
# TYPE elevenlabs_fallbacks_total counter
elevenlabs_fallbacks_total{{source="live"}} {up_ok}
elevenlabs_fallbacks_total{{source="cache"}} {up_fail}
# TYPE elevenlabs_upstream_request_duration_seconds histogram
elevenlabs_upstream_request_duration_seconds_bucket{{outcome="success",le="0.1"}} {up_b1}
elevenlabs_upstream_request_duration_seconds_bucket{{outcome="success",le="0.5"}} {up_b2}
elevenlabs_upstream_request_duration_seconds_bucket{{outcome="success",le="+Inf"}} {attempts}
elevenlabs_upstream_request_duration_seconds_count{{outcome="success"}} {attempts}
elevenlabs_upstream_request_duration_seconds_sum{{outcome="success"}} 9.0
# TYPE elevenlabs_circuit_breaker_state gauge
elevenlabs_circuit_breaker_state {breaker}
# TYPE db_pool_size gauge
db_pool_size {pool_size}
# TYPE db_pool_max_size gauge
db_pool_max_size 10
# TYPE db_pool_in_use gauge
db_pool_in_use {in_use}
# TYPE db_pool_waiting gauge
db_pool_waiting {waiting}
# TYPE db_pool_acquire_seconds histogram
db_pool_acquire_seconds_bucket{{le="0.001"}} {acq_b1}
db_pool_acquire_seconds_bucket{{le="0.01"}} {acq_b2}
db_pool_acquire_seconds_bucket{{le="+Inf"}} {acq_n}
db_pool_acquire_seconds_count {acq_n}
db_pool_acquire_seconds_sum 0.5
# TYPE db_pool_acquire_timeouts_total counter
db_pool_acquire_timeouts_total {acq_to}
# TYPE db_query_duration_seconds histogram
db_query_duration_seconds_bucket{{query="overview_kpis",le="0.01"}} {q_b1}
db_query_duration_seconds_bucket{{query="overview_kpis",le="+Inf"}} {q_n}
db_query_duration_seconds_count{{query="overview_kpis"}} {q_n}
db_query_duration_seconds_sum{{query="overview_kpis"}} 1.0
db_query_duration_seconds_bucket{{query="agent_stats",le="0.01"}} 7
db_query_duration_seconds_bucket{{query="agent_stats",le="+Inf"}} 7
db_query_duration_seconds_count{{query="agent_stats"}} 7
db_query_duration_seconds_sum{{query="agent_stats"}} 0.01
# TYPE db_query_errors_total counter
db_query_errors_total{{query="overview_kpis",kind="QueryCanceledError"}} {q_cancel}
db_query_errors_total{{query="overview_kpis",kind="ConnectionDoesNotExistError"}} {q_lost}
# TYPE kpi_view_refreshes_total counter
kpi_view_refreshes_total{{outcome="ok"}} {kpi_ok}
kpi_view_refreshes_total{{outcome="error"}} {kpi_err}
# TYPE kpi_view_staleness_seconds gauge
kpi_view_staleness_seconds {stale_s}
# TYPE kpi_view_change_to_visible_seconds histogram
kpi_view_change_to_visible_seconds_bucket{{le="0.5"}} {ctv_b1}
kpi_view_change_to_visible_seconds_bucket{{le="1.0"}} {ctv_b2}
kpi_view_change_to_visible_seconds_bucket{{le="+Inf"}} {ctv_b2}
kpi_view_change_to_visible_seconds_count {ctv_b2}
kpi_view_change_to_visible_seconds_sum 3.0
# TYPE target_settings_info gauge
target_settings_info{{profile="naive",version="0.1.0",toggle_kpi_view="false",toggle_response_cache="true",pool_max_size="10",workers="2"}} 1
"""

FIELDS = ["a_fast", "a_mid", "a_ok", "a_500", "o_ok", "hits_ov", "hits_auth", "miss_ov", "stale_ov", "ev_ttl", "ev_inv", "up_ok", "up_fail", "attempts", "retry_5xx", "retry_429", "timeouts", "up_b1", "up_b2", "breaker", "pool_size", "in_use", "waiting", "acq_b1", "acq_b2", "acq_n", "acq_to", "q_b1", "q_n", "q_cancel", "q_lost", "kpi_ok", "kpi_err", "stale_s", "ctv_b1", "ctv_b2"]
#                 t:  96 before, 100 start, 102, 106, 108 end, 110 after
COLUMNS = {
    "a_fast": (5, 10, 30, 50, 60, 62), "a_mid": (8, 18, 45, 80, 95, 97),
    "a_ok": (10, 20, 50, 90, 100, 102), "a_500": (0, 1, 1, 3, 4, 4),
    "o_ok": (2, 5, 15, 25, 35, 35), "hits_ov": (80, 100, 150, 220, 250, 250),
    "hits_auth": (40, 50, 60, 70, 80, 80), "miss_ov": (8, 10, 20, 30, 35, 35),
    "stale_ov": (4, 5, 5, 10, 15, 15), "ev_ttl": (2, 2, 3, 4, 6, 6), "ev_inv": (0, 1, 1, 1, 3, 3),
    "up_ok": (30, 40, 55, 80, 88, 88), "up_fail": (0, 0, 1, 2, 2, 2),
    "attempts": (30, 40, 60, 90, 100, 100), "retry_5xx": (0, 0, 3, 6, 8, 8),
    "retry_429": (0, 0, 1, 2, 2, 2), "timeouts": (0, 0, 2, 3, 3, 3),
    "up_b1": (25, 35, 50, 70, 75, 75), "up_b2": (30, 40, 58, 88, 97, 97),
    "breaker": (0, 0, 2, 1, 0, 2), "pool_size": (2, 4, 8, 10, 6, 3),
    "in_use": (9, 1, 7, 3, 2, 0), "waiting": (5, 0, 0, 4, 1, 9),
    "acq_b1": (50, 100, 150, 190, 200, 200), "acq_b2": (50, 100, 180, 270, 300, 300),
    "acq_n": (50, 100, 180, 280, 310, 310), "acq_to": (0, 0, 0, 1, 2, 2),
    "q_b1": (90, 100, 130, 160, 180, 180), "q_n": (90, 100, 140, 180, 200, 200),
    "q_cancel": (0, 0, 1, 2, 2, 2), "q_lost": (0, 0, 0, 1, 1, 1),
    "kpi_ok": (1, 3, 4, 5, 7, 7), "kpi_err": (0, 1, 1, 2, 2, 2),
    "stale_s": (0.5, 0.5, 2.5, 1.0, 0.0, 30.0), "ctv_b1": (1, 2, 3, 5, 7, 7),
    "ctv_b2": (1, 3, 6, 10, 13, 13),
}
assert set(COLUMNS) == set(FIELDS)


def text(i: int, **override: float) -> str:
    return TEMPLATE.format(**({k: v[i] for k, v in COLUMNS.items()} | override))


START = Scrape(t=100.0, text=text(1), edge="start")
END = Scrape(t=108.0, text=text(4), edge="end")
DURING = [Scrape(t=96.0, text=text(0)), Scrape(t=102.0, text=text(2)),
          Scrape(t=104.0, text=None, error="timed out"), Scrape(t=106.0, text=text(3)),
          Scrape(t=109.0, text=None), Scrape(t=110.0, text=text(5))]


@pytest.fixture(scope="module")
def side():
    return sm.summarize(START, END, DURING)


def test_routes_count_every_status_and_the_5xx_apart(side):
    assert set(side.routes) == {AGENTS, OVERVIEW}
    agents = side.routes[AGENTS]
    assert (agents.count, agents.errors_5xx) == (83, 3)  # 80 ok + 3 errors in the window
    # buckets over both statuses: le 0.01: 50, le 0.1: 80, +Inf: 83; rank 0.95 * 83
    assert agents.p95_ms == pytest.approx(1000 * (0.01 + 0.09 * (0.95 * 83 - 50) / 30), abs=1e-3)
    overview = side.routes[OVERVIEW]
    assert (overview.count, overview.errors_5xx) == (30, 0)
    assert overview.p95_ms == pytest.approx(9.5)  # all in the first bucket: 0.95 of 10 ms


def test_cache_hit_ratios_count_stale_hits_as_hits(side):
    overview = side.caches["overview"]
    assert (overview.hits, overview.misses, overview.stale_hits) == (150, 25, 10)
    assert overview.hit_ratio == round(160 / 185, 4) == 0.8649
    assert overview.evictions == {"ttl": 4, "invalidation": 2}
    auth = side.caches["auth"]
    assert (auth.hits, auth.misses, auth.hit_ratio, auth.evictions) == (30, 0, 1.0, {})


def test_upstream_retry_rate_amplification_and_failure_rate(side):
    up = side.upstream
    assert (up.logical_requests, up.attempts) == (50, 60)
    assert up.retries == {"server_error": 8, "rate_limited": 2}
    assert up.retry_rate == round(10 / 60, 4)  # retries per attempt
    assert up.retry_amplification == 1.2  # attempts per logical request
    assert up.failures == {"timeout": 2} and up.failure_rate == 0.04
    assert up.timeouts == 3
    assert up.fallbacks == {"live": 48, "cache": 2}
    # per-attempt latency, buckets le 0.1: 40, le 0.5: 57, +Inf: 60
    assert up.latency_ms.count == 60
    assert up.latency_ms.p50 == pytest.approx(75.0)
    assert up.latency_ms.p95 == pytest.approx(500.0)
    assert up.latency_ms.p99 == pytest.approx(500.0)  # past the last finite edge: that edge
    assert up.circuit_open_max == 2  # the scrape at 102; the 2 at 110 is after the window


def test_no_upstream_metrics_no_upstream_section():
    bare = Scrape(t=0.0, text='# TYPE db_pool_size gauge\ndb_pool_size 1\n', edge="start")
    side = sm.summarize(bare, Scrape(t=1.0, text=bare.text, edge="end"), [])
    assert side.upstream is None
    assert side.routes == {} and side.caches == {} and side.queries == {}


def test_gauge_maxima_come_from_the_window_scrapes_only(side):
    pool = side.db_pool
    assert pool.max_size == 10
    assert pool.size_max == 10  # at 106
    assert pool.in_use_max == 7  # at 102; the 9 at 96 is before the window
    assert pool.waiting_max == 4  # at 106; the 9 at 110 is after it
    assert pool.acquire_timeouts == 2
    # acquire: le 0.001: 100, le 0.01: 200, +Inf: 210; rank 199.5
    assert pool.acquire_p95_ms == pytest.approx(1000 * (0.001 + 0.009 * 99.5 / 100), abs=1e-3)


def test_queries_and_the_kpi_view(side):
    assert set(side.queries) == {"overview_kpis"}  # agent_stats ran nothing in the window
    q = side.queries["overview_kpis"]
    assert (q.count, q.errors) == (100, 3)  # errors of every kind
    assert q.p95_ms == pytest.approx(10.0)  # rank 95 is past the 0.01 bucket (80)
    assert side.kpi_view["refreshes"] == 4  # outcome="ok" only
    assert side.kpi_view["staleness_max_s"] == 2.5
    # le 0.5: 5, le 1.0: 10; rank 9.5
    assert side.kpi_view["change_to_visible_p95_s"] == pytest.approx(0.95)


def test_failed_scrapes_are_listed_and_left_out_of_the_series(side):
    assert side.failed_scrapes == [FailedScrape(t=104.0, error="timed out"),
                                   FailedScrape(t=109.0, error="no answer")]
    assert side.scrapes == 6  # the two edges and four answered periodic scrapes
    assert [(r.t, r.since, r.phase, r.edge) for r in side.series] == [
        (100.0, 96.0, "before", "start"), (102.0, 100.0, "measured", None),
        (106.0, 102.0, "measured", None), (108.0, 106.0, "measured", "end"),
        (110.0, 108.0, "after", None)]


def test_series_rows_carry_deltas_and_gauges(side):
    row = side.series[2]  # (102, 106]: across the failed scrape at 104
    assert row.requests == {AGENTS: 42, OVERVIEW: 10}
    assert row.errors_5xx == {AGENTS: 2}
    assert row.cache_hits == {"overview": 70, "auth": 10}
    assert row.cache_evictions == {"overview": {"ttl": 1, "invalidation": 0}}
    assert (row.upstream_requests, row.upstream_attempts) == (26, 30)
    assert row.upstream_retries == {"server_error": 3, "rate_limited": 1}
    assert (row.breaker_state, row.pool_size, row.pool_in_use, row.pool_waiting,
            row.kpi_staleness_s) == (1, 10, 3, 4, 1.0)


def test_measured_rows_add_up_to_the_window_edges_for_every_counter(side):
    rows = [r for r in side.series if r.phase == "measured"]
    window = exposition.delta(exposition.parse(START.text), exposition.parse(END.text))

    def added(get) -> dict:
        out: dict = {}
        for r in rows:
            for k, v in get(r).items():
                out[k] = out.get(k, 0) + v
        return out

    assert added(lambda r: r.requests) == {k: v.count for k, v in side.routes.items()}
    assert added(lambda r: r.errors_5xx) == {AGENTS: 3}
    assert added(lambda r: r.cache_hits) == {k: c.hits for k, c in side.caches.items()}
    assert added(lambda r: r.cache_misses) == {k: c.misses for k, c in side.caches.items()}
    assert added(lambda r: r.cache_stale_hits) == {k: c.stale_hits for k, c in side.caches.items()}
    assert added(lambda r: {f"{c}/{cause}": n for c, by in r.cache_evictions.items()
                            for cause, n in by.items()}) == {"overview/ttl": 4,
                                                             "overview/invalidation": 2}
    assert sum(r.upstream_requests for r in rows) == side.upstream.logical_requests
    assert sum(r.upstream_attempts for r in rows) == side.upstream.attempts
    assert added(lambda r: r.upstream_retries) == side.upstream.retries
    assert added(lambda r: r.upstream_failures) == side.upstream.failures
    assert added(lambda r: r.upstream_fallbacks) == side.upstream.fallbacks
    assert sum(r.upstream_requests for r in rows) == exposition.total(window, "elevenlabs_requests_total")


def test_a_counter_reset_between_scrapes_counts_from_zero():
    c = '# TYPE elevenlabs_attempts_total counter\nelevenlabs_attempts_total {}\n'
    scrapes = [(Scrape(t=float(t), text=c.format(v)), exposition.parse(c.format(v)))
               for t, v in ((0, 10), (2, 3), (4, 5))]
    rows = sm.series(scrapes, start=-1.0, end=10.0)
    assert [r.upstream_attempts for r in rows] == [3, 2]  # 10 -> 3: a restart, 3 new
    assert exposition.total(exposition.delta(scrapes[0][1], scrapes[1][1]), "elevenlabs_attempts_total") == 3


def test_a_counter_reset_inside_the_window_is_counted_like_the_series():
    c = ('# TYPE http_request_duration_seconds histogram\n'
         'http_request_duration_seconds_count{{method="GET",route="/api/v1/agents",'
         'status="200"}} {}\n')
    side = sm.summarize(Scrape(t=0.0, text=c.format(100), edge="start"),
                        Scrape(t=4.0, text=c.format(150), edge="end"),
                        [Scrape(t=2.0, text=c.format(20))])  # the service restarted at ~1 s
    rows = [r for r in side.series if r.phase == "measured"]
    assert [r.requests[AGENTS] for r in rows] == [20, 130]
    assert side.routes[AGENTS].count == 150


def test_target_settings_parse_toggles_to_bools():
    target = sm.target_settings(exposition.parse(START.text))
    assert target.profile == "naive" and target.version == "0.1.0"
    assert target.toggles == {"kpi_view": False, "response_cache": True}
    assert target.settings == {"pool_max_size": "10", "workers": "2"}
    assert sm.target_settings(exposition.parse("# TYPE db_pool_size gauge\ndb_pool_size 1\n")) is None


def test_target_settings_take_the_series_in_force():
    both = ('# TYPE target_settings_info gauge\n'
            'target_settings_info{profile="optimized",toggle_kpi_view="true"} 0\n'
            'target_settings_info{profile="naive",toggle_kpi_view="false"} 1\n')
    target = sm.target_settings(exposition.parse(both))
    assert (target.profile, target.toggles) == ("naive", {"kpi_view": False})


def test_prometheus_histogram_quantile_interpolates_like_promql():
    text_ = "\n".join([
        "# TYPE x histogram",
        'x_bucket{le="0.1"} 50', 'x_bucket{le="0.2"} 90', 'x_bucket{le="0.4"} 100',
        'x_bucket{le="+Inf"} 100', "x_count 100", "x_sum 10", ""])
    samples = exposition.parse(text_)
    assert exposition.histogram_quantile(samples, "x", 0.5) == pytest.approx(0.1)
    assert exposition.histogram_quantile(samples, "x", 0.95) == pytest.approx(0.3)
    assert exposition.histogram_quantile(samples, "x", 0.25) == pytest.approx(0.05)
    empty = exposition.delta(samples, samples)
    assert exposition.histogram_quantile(empty, "x", 0.5) is None
    assert exposition.histogram_quantile(samples, "missing", 0.5) is None


def test_histogram_quantile_sums_other_labels_and_matches_the_given_ones():
    samples = exposition.parse(START.text)
    ok_only = exposition.histogram_quantile(samples, "http_request_duration_seconds", 0.5,
                                    route="/api/v1/agents", status="200")
    assert ok_only == pytest.approx(0.01 * 10 / 10)  # rank 10 of 20: the first bucket's edge
    both = exposition.histogram_quantile(samples, "http_request_duration_seconds", 0.5,
                                 route="/api/v1/agents")
    assert both == pytest.approx(0.01 + 0.09 * (10.5 - 10) / 9)  # rank 10.5 of 21


def test_window_delta_is_reset_aware():
    before = exposition.parse('# TYPE c counter\nc_total{a="1"} 10\n')
    after = exposition.parse('# TYPE c counter\nc_total{a="1"} 3\nc_total{a="2"} 4\n')
    d = exposition.delta(before, after)
    assert exposition.total(d, "c_total") == 7
    assert exposition.by_label(d, "c_total", "a") == {"1": 3, "2": 4}


def test_a_periodic_scrape_racing_an_edge_counts_neither_twice_nor_as_a_reset():
    """The plugin stamps the end edge after its answer, the scraper before sending: a
    periodic scrape can carry an earlier time than the edge yet hold later counts. Inside
    the band it is left out of the window's totals and the series alike."""
    c = ('# TYPE http_request_duration_seconds histogram\n'
         'http_request_duration_seconds_count{{method="GET",route="/api/v1/agents",'
         'status="200"}} {}\n')
    side = sm.summarize(Scrape(t=0.0, text=c.format(10), edge="start"),
                        Scrape(t=4.0, text=c.format(50), edge="end"),
                        [Scrape(t=2.0, text=c.format(30)),
                         Scrape(t=3.95, text=c.format(51))])  # answered after the edge
    rows = [r for r in side.series if r.phase == "measured"]
    assert [r.requests[AGENTS] for r in rows] == [20, 20]
    assert side.routes[AGENTS].count == 40 == sum(r.requests[AGENTS] for r in rows)


def test_series_rows_keep_the_judged_histograms_as_observations_per_bucket(side):
    assert side.histogram_bounds == {
        "db_pool_acquire_seconds": [0.001, 0.01], "db_query_duration_seconds": [0.01],
        "elevenlabs_upstream_request_duration_seconds": [0.1, 0.5],
        "kpi_view_change_to_visible_seconds": [0.5, 1.0]}  # not the http histogram
    row = side.series[1]  # (100, 102]
    # ElevenLabs: le 0.1 35 -> 50, le 0.5 40 -> 58, +Inf 40 -> 60: 15, 3, 2
    assert row.histograms["elevenlabs_upstream_request_duration_seconds"] == {
        "success": [15, 3, 2]}
    assert row.histograms["db_pool_acquire_seconds"] == {"": [50, 30]}  # trailing 0 cut
    # agent_stats ran nothing: left out; overview_kpis le 0.01 100 -> 130, +Inf 100 -> 140
    assert row.histograms["db_query_duration_seconds"] == {"overview_kpis": [30, 10]}
    assert row.histograms["kpi_view_change_to_visible_seconds"] == {"": [1, 2]}
    assert side.series[-1].histograms == {}  # nothing observed after the window


def test_measured_rows_add_up_to_the_window_quantiles(side):
    import numpy as np

    from harness.analysis import buckets as bk

    rows = [r for r in side.series if r.phase == "measured"]
    for name, label, window_ms in (
            ("db_query_duration_seconds", "overview_kpis", side.queries["overview_kpis"].p95_ms),
            ("db_pool_acquire_seconds", "", side.db_pool.acquire_p95_ms),
            ("elevenlabs_upstream_request_duration_seconds", "success",
             side.upstream.latency_ms.p95),
            ("kpi_view_change_to_visible_seconds", "",
             side.kpi_view["change_to_visible_p95_s"] * 1000)):
        bounds = side.histogram_bounds[name]
        total = sum(bk.padded(r.histograms.get(name, {}).get(label, []), len(bounds) + 1)
                    for r in rows)
        assert isinstance(total, np.ndarray)
        got = float(bk.histogram_quantile(bounds, total, 0.95)) * 1000
        assert got == pytest.approx(window_ms, abs=1e-3), name


def test_bucket_deltas_count_a_reset_from_zero_and_difference_the_le_buckets():
    h = ('# TYPE db_pool_acquire_seconds histogram\n'
         'db_pool_acquire_seconds_bucket{{le="0.001"}} {}\n'
         'db_pool_acquire_seconds_bucket{{le="0.01"}} {}\n'
         'db_pool_acquire_seconds_bucket{{le="+Inf"}} {}\n')
    scrapes = [(Scrape(t=float(t), text=h.format(*v)), exposition.parse(h.format(*v)))
               for t, v in ((0, (10, 15, 16)), (2, (14, 20, 22)), (4, (2, 3, 3)),
                            (6, (2, 3, 3)), (8, (5, 9, 9)))]
    rows = sm.series(scrapes, start=-1.0, end=10.0)
    got = [r.histograms.get("db_pool_acquire_seconds", {}).get("") for r in rows]
    # 4, 1, 1 new; then a restart (16 -> 3 observations): 2, 1 counted from zero;
    # then nothing (left out); then 3, 3 with the +Inf bucket empty (cut off)
    assert got == [[4, 1, 1], [2, 1], None, [3, 3]]


def test_parse_buckets_reads_only_the_judged_histograms_in_any_label_order():
    text_ = "\n".join([
        "# TYPE db_query_duration_seconds histogram",
        'db_query_duration_seconds_bucket{le="0.01",query="a"} 3.0',
        'db_query_duration_seconds_bucket{query="a",le="+Inf"} 4.0',
        'db_query_duration_seconds_bucket{query="q \\"x\\"",le="+Inf"} 1.0 1700000000000',
        'db_query_duration_seconds_count{query="a"} 4.0',
        "# TYPE elevenlabs_upstream_request_duration_seconds histogram",
        'elevenlabs_upstream_request_duration_seconds_bucket{outcome="success",le="0.1"} 2.0',
        'elevenlabs_upstream_request_duration_seconds_bucket{outcome="timeout",le="0.1"} 0.0',
        'http_request_duration_seconds_bucket{method="GET",route="/x",status="200",le="0.1"} 9',
        'db_pool_acquire_seconds_bucket{le="0.001",pid="7"} 5.0',
        'db_pool_acquire_seconds_bucket{le="0.001",pid="8"} 6.0',
        'db_pool_acquire_seconds_bucket{le="0.01"} not-a-number', ""])
    assert exposition.parse_buckets(text_) == {
        "db_query_duration_seconds": {"a": {"0.01": 3.0, "+Inf": 4.0}, 'q "x"': {"+Inf": 1.0}},
        "elevenlabs_upstream_request_duration_seconds": {"success": {"0.1": 2.0},
                                                         "timeout": {"0.1": 0.0}},
        "db_pool_acquire_seconds": {"": {"0.001": 11.0}},  # other labels are summed
    }
    assert exposition.bucket_bounds([exposition.scan_buckets(text_)])["db_query_duration_seconds"] == [0.01]


def test_the_periodic_scrapes_fast_reader_agrees_with_the_full_parser():
    """`parse(text, only)` reads only the wanted families, by their `# TYPE` lines; it
    must find exactly what prometheus_client's parser finds for those names."""
    from tests.builders import EndpointSpec, HistogramSpec, build_run

    built = build_run({AGENTS: EndpointSpec(rps=5)}, seconds=4, server_histograms={
        ("db_query_duration_seconds", "agent_stats"): HistogramSpec(rate=3),
        ("db_pool_acquire_seconds", ""): HistogramSpec(rate=3)})
    escaped = ('# TYPE cache_hits counter\n'
               'cache_hits_total{cache="a\\\\b \\"c\\"",x="}"} 3.0\n'
               'cache_hits_created{cache="a"} 1.7e9\n# TYPE db_pool_size gauge\n'
               'db_pool_size 4 1700000000000\n# TYPE db_query_duration_seconds histogram\n'
               'db_query_duration_seconds_bucket{query="q \\"x\\", y",le="+Inf"} 2.0\n')
    for t in [text(i) for i in range(6)] + [s.text for s in built.scrapes] + [escaped]:
        full = {k: v for k, v in exposition.parse(t).items() if k[0] in sm.SERIES_METRICS}
        assert exposition.parse(t, sm.SERIES_METRICS) == full
        buckets = {k: v for k, v in exposition.parse(t).items() if k[0].endswith("_bucket")
                   and k[0].removesuffix("_bucket") in exposition.HISTOGRAMS}
        scanned = exposition.scan_buckets(t)
        assert len(scanned.keys) == len(buckets)
        assert sorted(scanned.values.tolist()) == sorted(buckets.values())
    assert exposition.parse_buckets(escaped) == {"db_query_duration_seconds": {'q "x", y': {"+Inf": 2.0}}}


def test_bucket_counts_are_one_string_each_in_json_and_lists_in_python(side):
    import json

    from harness.model.server import ServerSample

    row = side.series[1]
    raw = json.loads(row.model_dump_json())
    assert raw["histograms"]["elevenlabs_upstream_request_duration_seconds"] == {
        "success": "15 3 2"}
    assert ServerSample.model_validate_json(row.model_dump_json()) == row
    assert ServerSample.model_validate(raw).histograms == row.histograms
    with pytest.raises(ValueError):
        ServerSample.model_validate(raw | {"histograms": {"x": {"": "1 -2"}}})
