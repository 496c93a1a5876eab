"""`harness ablate`'s pure core on built runs whose truth is known: a toggle that makes the
overview 30% slower is found, with an interval around 1.3; a toggle that changes nothing
has intervals that cover no change; DB time, throughput and cache hit ratios move when
the runs say they do; missing caches and mismatched runs are said, not guessed."""

from __future__ import annotations

import math

import pytest

from harness.analysis.ablation import ablation, db_rows
from harness.analysis.checks import RunData
from harness.errors import ConfigError
from harness.model.ablation import AblationEffect
from tests.builders import EndpointSpec, HistogramSpec, LogNormal, build_run

OVERVIEW, AGENTS = "GET /api/v1/dashboard/overview", "GET /api/v1/agents"
QUERY = "db_query_duration_seconds"


def run(seed: int, overview_ms: float = 20.0, machine: float = 1.0, rps: float = 40.0,
        query_ms: float = 5.0, queries: float = 60.0, hits: float | None = 0.9,
        users: int = 10) -> RunData:
    """One run; `hits`: the overview cache's hit ratio in every scrape (None: no cache)."""
    built = build_run(
        {OVERVIEW: EndpointSpec(rps=rps, latency_ms=LogNormal(overview_ms * machine)),
         AGENTS: EndpointSpec(rps=30, latency_ms=LogNormal(12.0 * machine))},
        seconds=60, seed=seed, users=users,
        server_histograms={(QUERY, "agent_stats"): HistogramSpec(
            rate=queries, latency_ms=LogNormal(query_ms * machine, 0.3))})
    result = built.result
    if hits is not None:  # the builder has no caches: two lookups a second, `hits` of them hits
        rows = [r.model_copy(update={"cache_hits": {"overview": 200 * hits},
                                     "cache_misses": {"overview": 200 * (1 - hits)}})
                if r.phase == "measured" else r for r in result.server.series]
        result = result.model_copy(update={"server": result.server.model_copy(
            update={"series": rows})})
    return RunData(result, built.log)


def find(effects: list[AblationEffect], config: str, metric: str, subject: str) -> AblationEffect:
    return next(e for e in effects if (e.config, e.metric, e.subject) == (config, metric, subject))


def job(rounds: int = 3, **slow) -> list[dict[str, RunData]]:
    """`rounds` rounds of all on, `slow off` (overview 30% slower) and `noop off`, on a
    machine whose speed changes from round to round."""
    machine = [1.0, 1.3, 0.85, 1.1, 0.95, 1.2][:rounds]
    return [{"all on": run(10 * r + 1, machine=m),
             "slow off": run(10 * r + 2, overview_ms=26.0, machine=m, **slow),
             "noop off": run(10 * r + 3, machine=m)} for r, m in enumerate(machine)]


def test_a_toggle_whose_runs_are_30_percent_slower_is_found():
    effects = ablation(job(), resamples=500)
    slow = find(effects, "slow off", "p95", OVERVIEW)
    assert slow.scale == "ratio" and slow.unit == "ms" and slow.rounds == 3
    assert 1.2 < slow.change < 1.4 and slow.low > 1.1 and slow.low < 1.3 < slow.high
    assert slow.clear and 20 < slow.reference < 60 and slow.value > slow.reference
    assert "paired over 3 rounds" in slow.method
    # the other endpoint of the same configuration did not move
    agents = find(effects, "slow off", "p95", AGENTS)
    assert agents.low < 1.0 < agents.high


def test_a_no_op_toggle_s_intervals_cover_no_change():
    effects = [e for e in ablation(job(), resamples=500) if e.config == "noop off"]
    assert {e.metric for e in effects} == {"p95", "throughput", "db_time", "db_queries",
                                           "cache_hit_ratio"}
    for e in effects:
        assert e.low is not None and e.high is not None, e
        none = 1.0 if e.scale == "ratio" else 0.0
        assert e.low <= none <= e.high, e
        assert not e.clear


def test_db_time_throughput_and_cache_hits_follow_the_runs():
    rounds = [{"all on": run(r), "naive": run(100 + r, rps=20.0, query_ms=15.0,
                                                queries=120.0, hits=0.5)} for r in range(2)]
    effects = ablation(rounds, resamples=500)
    db = find(effects, "naive", "db_time", "named queries")
    # twice the queries, each three times as long: ~6x the query time per request, and
    # the naive side has fewer requests (40 + 30 -> 20 + 30 a second)
    assert db.unit == "ms/request" and db.change > 5 and db.low > 3
    queries = find(effects, "naive", "db_queries", "named queries")
    assert queries.change == pytest.approx((120 / 50) / (60 / 70), rel=0.1)
    assert queries.reference == pytest.approx(60 / 70, rel=0.1)
    rps = find(effects, "naive", "throughput", "all requests")
    assert rps.change == pytest.approx(50 / 70, rel=0.05) and rps.high < 1
    assert rps.reference == pytest.approx(70, rel=0.05)
    hits = find(effects, "naive", "cache_hit_ratio", "overview")
    assert hits.scale == "points" and hits.unit == "%"
    assert hits.reference == pytest.approx(90) and hits.value == pytest.approx(50)
    assert hits.change == pytest.approx(-40) and hits.high < -30


def test_the_db_time_estimate_puts_observations_at_their_bucket_midpoints():
    ms, queries, requests = db_rows(run(1))
    assert sum(queries) > 0 and len(ms) == len(queries) == len(requests)
    per_query = sum(ms) / sum(queries)
    assert 3.0 < per_query < 9.0  # ~5 ms queries, bucketed 2.5-5-7.5-10 ms


def test_a_cache_turned_off_has_no_estimate_and_says_why():
    rounds = [{"all on": run(r), "response_cache off": run(50 + r, hits=None)}
              for r in range(2)]
    hits = find(ablation(rounds, resamples=300), "response_cache off", "cache_hit_ratio",
                "overview")
    assert hits.change is None and hits.low is None and not hits.clear
    assert hits.reference == pytest.approx(90)  # all on's own ratio, for the table's first row
    assert "no lookups" in hits.why_not and "(round 1, 2)" in hits.why_not


def test_a_configuration_missing_from_a_round_is_paired_over_the_others():
    rounds = job(2)
    del rounds[1]["slow off"]  # interrupted before it ran
    slow = find(ablation(rounds, resamples=300), "slow off", "p95", OVERVIEW)
    assert slow.rounds == 1 and slow.change > 1.15
    noop = find(ablation(rounds, resamples=300), "noop off", "p95", OVERVIEW)
    assert noop.rounds == 2


def test_with_five_rounds_the_spread_between_rounds_is_included():
    effects = ablation(job(5), resamples=300)
    assert "paired over 5 rounds" in find(effects, "slow off", "p95", OVERVIEW).method


def test_runs_of_different_load_are_refused_unless_allowed():
    rounds = [{"all on": run(1), "x off": run(2, users=99)}]
    with pytest.raises(ConfigError, match="users"):
        ablation(rounds, resamples=100)
    assert ablation(rounds, resamples=100, allow_mismatch=True)
    with pytest.raises(ConfigError):
        ablation([], resamples=100)


def test_effects_are_finite_json_values():
    for e in ablation(job(1), resamples=200):
        for v in (e.change, e.low, e.high, e.reference, e.value):
            assert v is None or math.isfinite(v)
        AblationEffect.model_validate_json(e.model_dump_json())


def test_a_run_shorter_than_two_blocks_has_an_estimate_but_no_interval():
    def short(seed: int, ms: float) -> RunData:
        b = build_run({OVERVIEW: EndpointSpec(rps=20, latency_ms=LogNormal(ms))}, seconds=4,
                      seed=seed)
        return RunData(b.result, b.log)

    rounds = [{"all on": short(1, 20.0), "x off": short(2, 30.0)}]
    p95 = find(ablation(rounds, resamples=100), "x off", "p95", OVERVIEW)
    assert p95.change > 1.2 and p95.low is None and p95.high is None and not p95.clear
    rps = find(ablation(rounds, resamples=100), "x off", "throughput", "all requests")
    assert rps.change == pytest.approx(1.0) and rps.low is None and "too short" in rps.method
    # one-second blocks: four of them, bounded
    p95 = find(ablation(rounds, block_s=1, resamples=100), "x off", "p95", OVERVIEW)
    assert p95.low is not None and p95.low < p95.change < p95.high
