"""`harness capacity`'s decisions on synthetic steps: SLO text, step length, verdicts, the
next rate and the conclusion (pure: no process, no file)."""

from __future__ import annotations

import random

import pytest

from harness import hdr
from harness.analysis import capacity as cap
from harness.model.capacity import CapacityStep, Plan, StepMeasure
from tests.builders import EndpointSpec, LogNormal, build_run

SLO = cap.parse_slo("p95<100ms", "<1%")
PLAN = Plan(start_rate=10, factor=2, max_rate=200, max_steps=8,
            min_requests=cap.min_requests(0.95), min_step_s=10, max_step_s=60, warmup_s=5,
            max_shortfall=0.1)


def step(rate: float, **kw) -> StepMeasure:
    """A step that held unless `kw` says otherwise."""
    values: dict = {
        "asked_rate": rate, "users": int(rate * 2), "duration_s": 30.0,
        "run_id": f"r{rate:g}", "intended_rps": rate, "achieved_rps": rate,
        "shortfall_ratio": 0.0, "requests": 1_000, "throughput_rps": rate * 1.5,
        "failures": 0, "error_rate": 0.0, "latency_ms": 40.0,
        "latency_ci_ms": (35.0, 45.0), "saturated": False}
    values.update(kw)
    return StepMeasure(**values)


def judged(m: StepMeasure) -> CapacityStep:
    return CapacityStep(**m.model_dump(), verdict=cap.judge(m, SLO, PLAN))


# ---- the SLO's text ---------------------------------------------------------------------

@pytest.mark.parametrize(("text", "metric", "ms"), [
    ("p95<100ms", "p95", 100.0), ("p99 < 0.5s", "p99", 500.0), ("max<2s", "max", 2000.0),
    ("P50<12.5ms", "p50", 12.5), ("p90<.25s", "p90", 250.0)])
def test_a_good_slo_parses(text, metric, ms):
    slo = cap.parse_slo(text, "<0.5%")
    assert (slo.metric, slo.threshold_ms, slo.max_error_rate) == (metric, ms, 0.005)
    assert slo.text == text.strip() and slo.errors_text == "<0.5%"


@pytest.mark.parametrize(("text", "why"), [
    ("p95>100ms", "upper bound"), ("p95<=100ms", "upper bound"), ("p95<100", "unit"),
    ("p95<100us", "unit"), ("p97<100ms", "unknown metric"), ("", "METRIC<THRESHOLD"),
    ("p95", "METRIC<THRESHOLD"), ("p95<0ms", "above 0"), ("errors<1%", "METRIC<THRESHOLD"),
    ("p95<100ms for 10s", "METRIC<THRESHOLD")])
def test_a_bad_slo_is_a_usage_error_naming_the_fault(text, why):
    with pytest.raises(cap.SloError, match=why) as info:
        cap.parse_slo(text)
    assert info.value.exit_code == 2 and "\n" not in str(info.value)


@pytest.mark.parametrize(("text", "why"), [
    (">1%", "upper bound"), ("<1", "percentage"), ("<0%", "above 0"), ("<101%", "at most 100"),
    ("1%", "<PERCENT"), ("few", "<PERCENT")])
def test_a_bad_error_bound_is_a_usage_error(text, why):
    with pytest.raises(cap.SloError, match=why):
        cap.parse_slo("p95<100ms", text)


# ---- how long a step runs ----------------------------------------------------------------

def test_enough_requests_pins_the_quantile_within_the_tail_tolerance():
    assert cap.min_requests(0.95) == 457
    assert cap.min_requests(0.99) == 2377
    assert cap.min_requests(0.5) == cap.MIN_REQUESTS_FLOOR
    assert cap.min_requests(1.0) == cap.MAX_REQUESTS
    # a slow step runs longer, a fast one the minimum, never past the maximum
    assert cap.step_duration(10, PLAN) == 46
    assert cap.step_duration(200, PLAN) == PLAN.min_step_s
    assert cap.step_duration(1, PLAN) == PLAN.max_step_s


def test_the_bounds_of_a_quantile_bracket_it_and_narrow_with_more_requests():
    rng = random.Random(3)

    def bounds(n: int) -> tuple[float, float]:
        h = hdr.new_histogram()
        for _ in range(n):
            hdr.record(h, rng.uniform(1_000, 201_000))  # 1..201 ms: the p95 is 191 ms
        b = cap.quantile_bounds_ms(hdr.encode(h), 0.95)
        assert b is not None
        return b

    small, large = bounds(500), bounds(20_000)
    assert small[0] <= 191 <= small[1] and large[0] <= 191 <= large[1]
    assert large[1] - large[0] < (small[1] - small[0]) / 3
    assert cap.quantile_bounds_ms("", 0.95) is None
    assert cap.quantile_bounds_ms(hdr.encode(hdr.new_histogram()), 1.0) is None


# ---- a step's verdict --------------------------------------------------------------------

@pytest.mark.parametrize(("kw", "outcome", "words"), [
    ({}, "held", "p95 40.0 ms"),
    ({"latency_ms": 150.0, "latency_ci_ms": (120.0, 180.0)}, "latency", "not under 100"),
    ({"latency_ms": 100.0}, "latency", "not under 100"),  # the bound is strict: p95 < 100
    ({"error_rate": 0.02, "failures": 20}, "errors", "2.00% of requests failed"),
    ({"error_rate": 0.02, "latency_ms": 500.0}, "errors", "failed"),  # errors first
    ({"saturated": True, "latency_ms": 500.0}, "cannot_tell", "generator was saturated"),
    ({"status": "failed"}, "cannot_tell", "failed"),
    ({"requests": 0, "latency_ms": None, "latency_ci_ms": None}, "cannot_tell", "no request"),
    ({"requests": 200}, "cannot_tell", "fewer than the 457"),
    ({"requests": 200, "latency_ms": 150.0, "latency_ci_ms": (90.0, 400.0)}, "cannot_tell",
     "fewer than"),
    ({"requests": 200, "latency_ms": 300.0, "latency_ci_ms": (250.0, 400.0)}, "latency",
     "not under"),  # few requests, but even the lower bound is over: it broke
    ({"shortfall_ratio": 0.3, "achieved_rps": 7.0}, "cannot_tell", "rate was not tested"),
    ({"shortfall_ratio": 0.3, "latency_ms": 500.0}, "latency", "not under"),
])
def test_a_step_is_judged_in_order(kw, outcome, words):
    verdict = cap.judge(step(40, **kw), SLO, PLAN)
    assert verdict.outcome == outcome
    assert words in verdict.reason


def test_the_step_measure_comes_from_the_run_record_corrected_or_raw():
    built = build_run({"GET /api/v1/x": EndpointSpec(
        rps=50, latency_ms=LogNormal(30.0), corrected_extra_ms=200.0)}, seconds=20)
    raw_plan = PLAN.model_copy(update={"latency": "raw"})
    corrected = cap.measure(built.result, asked_rate=50, users=100, duration_s=20, slo=SLO,
                            plan=PLAN)
    raw = cap.measure(built.result, asked_rate=50, users=100, duration_s=20, slo=SLO,
                      plan=raw_plan)
    assert corrected.requests == raw.requests == built.result.totals.count > 900
    assert raw.latency_ms == built.result.totals.latency_ms.p95 < 100
    assert corrected.latency_ms == built.result.totals.corrected_latency_ms.p95 > 200
    assert raw.latency_ci_ms[0] <= raw.latency_ms <= raw.latency_ci_ms[1]
    assert cap.judge(raw, SLO, raw_plan).outcome == "held"
    assert cap.judge(corrected, SLO, PLAN).outcome == "latency"
    assert corrected.intended_rps == 50 and corrected.shortfall_ratio == 0.0


# ---- the next rate and the conclusion ----------------------------------------------------

def test_rates_grow_by_the_factor_up_to_the_maximum_and_stop_at_a_break():
    assert cap.next_rate(PLAN, []) == 10
    steps = [judged(step(10)), judged(step(20))]
    assert cap.next_rate(PLAN, steps) == 40
    steps += [judged(step(160))]
    assert cap.next_rate(PLAN, steps) == 200, "the maximum is tried, not skipped"
    assert cap.next_rate(PLAN, [*steps, judged(step(200))]) is None
    assert cap.next_rate(PLAN, [*steps, judged(step(320, latency_ms=300.0))]) is None
    few = PLAN.model_copy(update={"max_steps": 2})
    assert cap.next_rate(few, steps[:2]) is None


def test_users_follow_the_pace_the_last_step_measured():
    assert cap.per_user_rate([], 1.0) == cap.DEFAULT_PER_USER_RATE
    assert cap.per_user_rate([], 2.0) == 2 * cap.DEFAULT_PER_USER_RATE
    measured = step(10, users=25, intended_rps=12.5)  # 0.5 tasks/s a user
    assert cap.per_user_rate([measured], 1.0) == 0.5
    assert cap.users_for(40, 0.5) == 80 and cap.users_for(0.1, 0.5) == 1


def test_the_capacity_is_the_highest_rate_that_held_below_the_break():
    steps = [judged(step(10)), judged(step(20, achieved_rps=19.6)),
             judged(step(40, latency_ms=180.0, latency_ci_ms=(150.0, 210.0)))]
    c = cap.conclude(steps, PLAN)
    assert (c.capacity_rate, c.broke_by, c.broke_at_rate) == (19.6, "latency", 40)
    assert c.capacity_rps == 30.0
    assert "capacity 19.6 tasks/s" in c.summary and "latency at 40" in c.summary


def test_a_break_on_generator_saturation_is_cannot_tell_not_the_services_limit():
    steps = [judged(step(10)), judged(step(20, saturated=True, latency_ms=900.0))]
    c = cap.conclude(steps, PLAN)
    assert c.broke_by == "cannot_tell" and c.capacity_rate == 10
    assert "cannot tell" in c.summary and "not a limit of the service" in c.summary


def test_no_break_up_to_the_maximum_is_a_lower_bound_and_a_first_break_is_no_capacity():
    held = [judged(step(r)) for r in (10, 20, 40, 80, 160, 200)]
    c = cap.conclude(held, PLAN)
    assert c.broke_by is None and c.capacity_rate == 200 and "at least" in c.summary
    first = cap.conclude([judged(step(10, error_rate=0.5))], PLAN)
    assert first.capacity_rate is None and first.broke_by == "errors"
    assert "first step" in first.summary
