"""`--abort-on`: the spec grammar, and the evaluator on live snapshots whose truth is known."""

from __future__ import annotations

import pytest

from harness.analysis.abort import AbortEvaluator, AbortSpecError, parse_spec, parse_specs
from harness.errors import UsageError
from harness.model.client import LiveEndpoint, LiveStatus
from harness.model.result import AbortInfo

T0 = 1_800_000_000.0  # measure_from
OVERVIEW = "GET /api/v1/dashboard/overview"
AGENTS = "GET /api/v1/agents"


@pytest.mark.parametrize("text, expected", [
    ("p95:/api/v1/dashboard/overview>500ms for 30s",
     {"metric": "p95", "endpoint": "/api/v1/dashboard/overview", "method": None, "op": ">",
      "threshold": 500.0, "unit": "ms", "for_s": 30.0}),
    ("errors>5% for 10s",
     {"metric": "errors", "endpoint": None, "op": ">", "threshold": 5.0, "unit": "%",
      "for_s": 10.0}),
    ("max:GET /api/v1/agents/{agent_id} > 1.5s for 1m30s",
     {"metric": "max", "endpoint": "/api/v1/agents/{agent_id}", "method": "GET",
      "threshold": 1500.0, "for_s": 90.0}),
    ("rps<20 for 15s",
     {"metric": "rps", "op": "<", "threshold": 20.0, "unit": "rps", "for_s": 15.0}),
    ("rps:POST /api/v1/calls<0.5/s", {"method": "POST", "threshold": 0.5, "for_s": 0.0}),
    ("  P99 : get /api/v1/activity >250 ms  ",
     {"metric": "p99", "method": "GET", "endpoint": "/api/v1/activity"}),
    ("errors:/api/v1/agents>0.5% for 500ms", {"threshold": 0.5, "for_s": 0.5}),
])
def test_good_specs_parse(text, expected):
    spec = parse_spec(text)
    assert spec.text == text.strip()
    for name, value in expected.items():
        assert getattr(spec, name) == value, name


@pytest.mark.parametrize("text, words", [
    ("p95:/api/v1/dashboard/overview", "no comparison"),
    ("p97>500ms", "unknown metric 'p97'"),
    ("p95>500", "needs a unit, ms or s"),
    ("p95>500%", "needs a unit, ms or s, not '%'"),
    ("errors>5", "percentage"),
    ("errors>150%", "at most 100%"),
    ("rps<20ms", "requests per second"),
    ("p95>=500ms", "> or <"),
    ("p95=500ms", "> or <"),
    ("p95>fast", "not a number"),
    ("p95>-5ms", "not a number"),
    ("p95:>500ms", "nothing after ':'"),
    ("p95:FETCH /x>500ms", "unknown method"),
    ("p95:api/v1/agents>500ms", "not METHOD /route"),
    ("p95:/api/v1/activity?limit=5>500ms", "without a query string"),
    ("p95>500ms for ever", "after 'for'"),
    ("p95>500ms for 30", "after 'for'"),
    ("", "no comparison"),
])
def test_bad_specs_are_one_clear_line(text, words):
    with pytest.raises(AbortSpecError) as caught:
        parse_spec(text)
    message = str(caught.value)
    assert words in message and "\n" not in message
    assert isinstance(caught.value, UsageError)  # exit 2


def test_parse_specs_keeps_order():
    specs = parse_specs(["errors>5%", "p95>1s"])
    assert [s.metric for s in specs] == ["errors", "p95"]


def entry(p95: float | None = 20.0, count: int = 50, failures: int = 0,
          max_ms: float | None = None) -> LiveEndpoint:
    if not count:
        return LiveEndpoint(rps=0.0, p95_ms=None, error_rate=0.0)
    return LiveEndpoint(rps=count / 5, p95_ms=p95, error_rate=failures / count, count=count,
                        failures=failures, p50_ms=p95 and p95 / 2, p90_ms=p95, p99_ms=p95,
                        max_ms=max_ms or p95)


def snap(t: float, endpoints: dict[str, LiveEndpoint], phase: str = "measured",
         span_from: float | None = None) -> LiveStatus:
    """A live snapshot at T0 + t (its span the 5 s before t - 1, like the plugin's)."""
    now = T0 + t
    counts = sum(e.count for e in endpoints.values())
    fails = sum(e.failures for e in endpoints.values())
    total = entry(max((e.p95_ms or 0) for e in endpoints.values()) if counts else None,
                  counts, fails) if endpoints else None
    start = now - 6 if span_from is None else span_from
    return LiveStatus(t=now, phase=phase, users=10, rps=counts / 5, endpoints=endpoints,
                      started_at=T0 - 10, measure_from=T0, span_from=start, span_to=start + 5,
                      total=total)


def run(specs: list[str], snapshots: list[LiveStatus]) -> tuple[AbortEvaluator, list]:
    """Every snapshot through one evaluator; the firings in order (None where none)."""
    evaluator = AbortEvaluator(parse_specs(specs))
    return evaluator, [evaluator.observe(s) for s in snapshots]


def slow_from(start: int, end: int, horizon: int = 40, slow: float = 900.0):
    """Overview p95 900 ms from second `start` to `end` (exclusive), 20 ms otherwise."""
    return [snap(t, {OVERVIEW: entry(slow if start <= t < end else 20.0)})
            for t in range(6, horizon)]


def test_a_breach_shorter_than_for_does_not_fire():
    _, fired = run(["p95:/api/v1/dashboard/overview>500ms for 10s"], slow_from(10, 19))
    assert fired == [None] * len(fired)  # breached 10..18: 8 s, not 10


def test_a_breach_as_long_as_for_fires_at_its_end():
    evaluator, fired = run(["p95:/api/v1/dashboard/overview>500ms for 10s"],
                           slow_from(10, 30))
    hits = [f for f in fired if f is not None]
    assert len(hits) >= 1
    first = hits[0]
    assert first.at == T0 + 20 and first.since == T0 + 10 and first.breached_for_s == 10
    assert first.endpoint == OVERVIEW and first.observed == 900.0
    assert fired.index(first) == 20 - 6  # the snapshot at t=20, none before
    assert evaluator.never_evaluated() == []


def test_a_clear_resets_the_breach():
    snapshots = slow_from(10, 30)
    snapshots[15 - 6] = snap(15, {OVERVIEW: entry(20.0)})  # one healthy second at t=15
    _, fired = run(["p95:/api/v1/dashboard/overview>500ms for 10s"], snapshots)
    first = next(f for f in fired if f is not None)
    assert first.since == T0 + 16 and first.at == T0 + 26


def test_without_for_the_first_breach_fires():
    _, fired = run(["p95>500ms"], slow_from(12, 13))
    first = next(f for f in fired if f is not None)
    assert first.at == T0 + 12 and first.breached_for_s == 0 and first.endpoint is None


def test_warmup_and_spans_reaching_into_it_are_not_judged():
    warm = [snap(t, {OVERVIEW: entry(5000.0)}, phase="warmup") for t in range(-10, 0)]
    # measured, but the span still covers warm-up seconds: not judged either
    straddling = [snap(t, {OVERVIEW: entry(5000.0)}, span_from=T0 + t - 6) for t in range(6)]
    evaluator, fired = run(["p95>500ms"], warm + straddling)
    assert fired == [None] * len(fired)
    assert len(evaluator.never_evaluated()) == 1
    stopping = snap(30, {OVERVIEW: entry(5000.0)}, phase="stopping")
    assert evaluator.observe(stopping) is None


def test_no_requests_in_the_span_neither_breaches_nor_clears():
    snapshots = slow_from(10, 30)
    for t in range(14, 18):  # every overview request hung: nothing completed in the span
        snapshots[t - 6] = snap(t, {OVERVIEW: entry(count=0)})
    _, fired = run(["p95:/api/v1/dashboard/overview>500ms for 10s"], snapshots)
    first = next(f for f in fired if f is not None)
    assert first.since == T0 + 10 and first.at == T0 + 20  # the gap kept the breach


def test_rps_of_a_seen_endpoint_without_requests_is_zero():
    snapshots = [snap(t, {AGENTS: entry(count=50)}) for t in range(6, 10)]
    snapshots += [snap(t, {}) for t in range(10, 20)]
    _, fired = run(["rps:GET /api/v1/agents<1 for 5s"], snapshots)
    first = next(f for f in fired if f is not None)
    assert (first.since, first.at, first.observed) == (T0 + 10, T0 + 15, 0.0)


def test_an_endpoint_never_requested_is_never_judged_and_said():
    evaluator, fired = run(["rps:GET /api/v1/nowhere<1", "p95:/api/v1/agents>1ms"],
                           slow_from(0, 0, horizon=20))
    assert fired == [None] * len(fired)
    assert [s.text for s in evaluator.never_evaluated()] == [
        "rps:GET /api/v1/nowhere<1", "p95:/api/v1/agents>1ms"]


def test_errors_over_all_requests_and_per_endpoint():
    snapshots = [snap(t, {OVERVIEW: entry(count=90, failures=0),
                          AGENTS: entry(count=10, failures=8 if t >= 10 else 0)})
                 for t in range(6, 30)]
    # 8 of 100 requests failed: 8% overall, 80% on the agents page
    _, fired = run(["errors>10% for 3s", "errors:/api/v1/agents>50% for 3s"], snapshots)
    first = next(f for f in fired if f is not None)
    assert first.spec.text == "errors:/api/v1/agents>50% for 3s" and first.observed == 80.0
    _, fired = run(["errors>5% for 3s"], snapshots)
    first = next(f for f in fired if f is not None)
    assert first.observed == pytest.approx(8.0) and first.at == T0 + 13


def test_several_specs_are_independent_and_the_first_to_fire_wins():
    # overview breaches 10..13 (4 s, short of its 5 s); the agents page from 8 on
    snapshots = [snap(t, {OVERVIEW: entry(900.0 if 10 <= t < 14 else 20.0),
                          AGENTS: entry(700.0 if t >= 8 else 20.0)}) for t in range(6, 40)]
    _, fired = run(["p95:/api/v1/dashboard/overview>500ms for 5s",
                    "p95:GET /api/v1/agents>500ms for 20s"], snapshots)
    first = next(f for f in fired if f is not None)
    assert first.spec.endpoint == "/api/v1/agents" and (first.since, first.at) == (T0 + 8,
                                                                                  T0 + 28)
    # both past their `for` on the same snapshot: the first given is the one reported
    both = [snap(t, {OVERVIEW: entry(900.0), AGENTS: entry(900.0)}) for t in range(6, 20)]
    _, fired = run(["p95:/api/v1/agents>500ms for 3s", "p95>500ms for 3s"], both)
    first = next(f for f in fired if f is not None)
    assert first.spec.text == "p95:/api/v1/agents>500ms for 3s" and first.at == T0 + 9


def test_a_snapshot_read_twice_counts_once():
    evaluator = AbortEvaluator(parse_specs(["p95>500ms for 2s"]))
    same = snap(10, {OVERVIEW: entry(900.0)})
    assert [evaluator.observe(same) for _ in range(5)] == [None] * 5
    assert evaluator.observe(snap(12, {OVERVIEW: entry(900.0)})) is not None


def test_a_bare_route_served_by_two_methods_is_refused():
    evaluator = AbortEvaluator(parse_specs(["p95:/api/v1/calls>500ms"]))
    with pytest.raises(AbortSpecError, match="GET /api/v1/calls and POST /api/v1/calls"):
        evaluator.observe(snap(10, {"GET /api/v1/calls": entry(),
                                    "POST /api/v1/calls": entry()}))


def test_less_than_thresholds_breach_below():
    snapshots = [snap(t, {OVERVIEW: entry(count=100 if t < 10 else 10)}) for t in range(6, 20)]
    _, fired = run(["rps<5 for 4s"], snapshots)  # 20 rps, then 2 rps from t=10
    first = next(f for f in fired if f is not None)
    assert first.at == T0 + 14 and first.observed == 2.0


def test_the_record_and_the_line_say_why():
    _, fired = run(["p95:/api/v1/dashboard/overview>500ms for 10s"], slow_from(10, 30))
    first = next(f for f in fired if f is not None)
    info = first.info()
    assert isinstance(info, AbortInfo)
    assert (info.spec, info.metric, info.endpoint, info.unit) == (
        "p95:/api/v1/dashboard/overview>500ms for 10s", "p95", OVERVIEW, "ms")
    assert (info.observed, info.threshold, info.breached_for_s, info.after_measured_s) == (
        900.0, 500.0, 10.0, 20.0)
    assert info.breached_since < info.fired_at
    line = first.message()
    assert "\n" not in line and "900.0 ms > 500.0 ms for 10.0s" in line and OVERVIEW in line
