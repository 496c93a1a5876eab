"""`harness capacity`, the decisions: the SLO's text, how long a step runs, what a step says,
the next rate, and the conclusion. Pure: steps come in as run records, verdicts go out.

How a step is judged (in this order; the first that applies is the verdict):

1. its run did not complete, or the load generator was saturated (`generator.saturated`:
   its latencies describe itself): **cannot tell**;
2. the share of failed requests is over `--errors`: **errors**;
3. the SLO's latency quantile (corrected for coordinated omission unless asked
   otherwise) is over its bound: **latency**, provided the step had enough requests to
   estimate that quantile (or even the lower end of its confidence interval is over);
4. too few requests to estimate the quantile (see `min_requests`): **cannot tell**;
5. the generator delivered less than `1 - max_shortfall` of the asked arrival rate
   (with the latency fine, the rate was not the service's doing): **cannot tell**;
6. otherwise it **held**.

The search steps the rate up by a factor until a step does not hold; the capacity is
the highest rate that held below it. A search that ends on "cannot tell" says the
capacity is at least that, never that the service's limit was found.

How long a step runs: enough requests for the quantile to be pinned down. With n
requests, the empirical q-quantile lies, with 95% confidence, between the empirical
`q - d` and `q + d` quantiles for `d = 1.96 * sqrt(q (1 - q) / n)` (the binomial
order-statistic bound; no assumption on the latency distribution). Asking `d` to be
`(1 - q) / 2.5` (p95: between p93 and p97) gives `n = 1.96² q (1 - q) / d²`: 457
requests for a p95, 2377 for a p99, at least `MIN_REQUESTS_FLOOR`. A task makes at
least one request, so a step runs `n / rate` seconds, clamped to the plan's bounds.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from harness import hdr
from harness.errors import UsageError
from harness.model.capacity import (
    CapacityStep,
    Conclusion,
    LatencyMetric,
    Plan,
    Slo,
    StepMeasure,
    StepVerdict,
)
from harness.model.result import RunResult

Z95 = 1.959964
TAIL_TOLERANCE = 2.5
"""The quantile's 95% interval spans at most (1 - q) / 2.5 either side (p95: p93..p97)."""
MIN_REQUESTS_FLOOR = 100
MAX_REQUESTS = 500
"""For `max`, which has no interval: a fixed number of requests."""
DEFAULT_PER_USER_RATE = 0.5
"""Task starts per second of one user at `--pace-scale 1` before the first step has
measured it (a dashboard or agents user; the mixed scenario averages 0.485)."""
SLO_EXAMPLE = "e.g. --slo 'p95<100ms' --errors '<1%'"
_METRICS: tuple[LatencyMetric, ...] = ("p50", "p90", "p95", "p99", "max")
_SLO = re.compile(r"(?P<metric>[a-z0-9]+)\s*(?P<op><=|>=|=|<|>)\s*"
                  r"(?P<value>\d+(?:\.\d*)?|\.\d+)\s*(?P<unit>[a-z]*)")
_ERRORS = re.compile(r"(?:errors\s*)?(?P<op><=|>=|=|<|>)\s*(?P<value>\d+(?:\.\d*)?|\.\d+)"
                     r"\s*(?P<unit>%?)")


class SloError(UsageError):
    """An `--slo` or `--errors` that cannot be used: exit 2 before anything starts."""


def parse_slo(text: str, errors: str = "<1%") -> Slo:
    """`p95<100ms` (or `p99 < 0.5s`, `max<2s`) and `<1%` as an `Slo`; anything else is an
    `SloError` naming what is wrong."""
    found = _SLO.fullmatch(text.strip().lower())
    if found is None:
        raise SloError(f"--slo {text!r}: write METRIC<THRESHOLD with a unit ({SLO_EXAMPLE})")
    metric, op, value, unit = found.group("metric", "op", "value", "unit")
    if metric not in _METRICS:
        raise SloError(f"--slo {text!r}: unknown metric {metric!r}; use one of "
                       f"{', '.join(_METRICS)}")
    if op != "<":
        raise SloError(f"--slo {text!r}: an SLO is an upper bound, METRIC<THRESHOLD "
                       f"(not {op})")
    if unit not in ("ms", "s"):
        raise SloError(f"--slo {text!r}: the threshold needs a unit, ms or s, not "
                       f"{unit or 'none'!r}")
    threshold = float(value) * (1000.0 if unit == "s" else 1.0)
    if threshold <= 0:
        raise SloError(f"--slo {text!r}: the threshold must be above 0")
    return Slo(text=text.strip(), metric=metric, threshold_ms=threshold,
               errors_text=errors.strip(), max_error_rate=parse_errors(errors))


def parse_errors(text: str) -> float:
    """`<1%` (or `errors<0.5%`) as a share; an `SloError` otherwise."""
    found = _ERRORS.fullmatch(text.strip().lower())
    if found is None:
        raise SloError(f"--errors {text!r}: write <PERCENT, e.g. '<1%'")
    if found.group("op") != "<":
        raise SloError(f"--errors {text!r}: the error bound is an upper bound, <PERCENT")
    if found.group("unit") != "%":
        raise SloError(f"--errors {text!r}: the bound is a percentage, e.g. '<1%'")
    value = float(found.group("value"))
    if not 0 < value <= 100:
        raise SloError(f"--errors {text!r}: the percentage must be above 0 and at most 100")
    return value / 100.0


def min_requests(quantile: float) -> int:
    """Requests a step needs for its `quantile` to be known within the tail tolerance."""
    if quantile >= 1.0:
        return MAX_REQUESTS
    d = (1.0 - quantile) / TAIL_TOLERANCE
    return max(MIN_REQUESTS_FLOOR, math.ceil(Z95 ** 2 * quantile * (1.0 - quantile) / d ** 2))


def step_duration(rate: float, plan: Plan) -> float:
    """Seconds a step at `rate` task starts per second runs: `min_requests / rate`, at
    least `min_step_s`, at most `max_step_s`."""
    return min(plan.max_step_s, max(plan.min_step_s, math.ceil(plan.min_requests / rate)))


def users_for(rate: float, per_user_rate: float) -> int:
    """Simulated users that, each paced at `per_user_rate`, start `rate` tasks a second."""
    return max(1, math.ceil(rate / per_user_rate - 1e-9))


def per_user_rate(steps: Sequence[StepMeasure], pace_scale: float) -> float:
    """One user's task starts per second: as the last step measured it (its schedule
    over its users), else the scenario's documented pace."""
    for step in reversed(steps):
        if step.intended_rps and step.users:
            return step.intended_rps / step.users
    return DEFAULT_PER_USER_RATE * pace_scale


def next_rate(plan: Plan, steps: Sequence[CapacityStep]) -> float | None:
    """The next step's arrival rate, or None when the search is over (a step that did
    not hold, the last step allowed, or `max_rate` tried)."""
    if not steps:
        return plan.start_rate
    last = steps[-1]
    if last.verdict.outcome != "held" or len(steps) >= plan.max_steps:
        return None
    if last.asked_rate >= plan.max_rate:
        return None
    return min(plan.max_rate, last.asked_rate * plan.factor)


def quantile_bounds_ms(histogram: str, quantile: float) -> tuple[float, float] | None:
    """Distribution-free 95% bounds of a quantile of an encoded histogram (ms): the
    values at ranks `n q -/+ 1.96 sqrt(n q (1 - q))`. None for max or an empty one."""
    if quantile >= 1.0 or not histogram:
        return None
    h = hdr.decode(histogram)
    n = h.get_total_count()
    if n == 0:
        return None
    spread = Z95 * math.sqrt(n * quantile * (1.0 - quantile))
    lo = max(1.0, math.floor(n * quantile - spread))
    hi = min(float(n), math.ceil(n * quantile + spread) + 1)
    low, high = hdr.values_at_percentiles(h, (100.0 * lo / n, 100.0 * hi / n))
    return low / 1000.0, high / 1000.0


def measure(result: RunResult, *, asked_rate: float, users: int, duration_s: float,
            slo: Slo, plan: Plan) -> StepMeasure:
    """What a step's run record says about the SLO."""
    totals = result.totals
    corrected = plan.latency == "corrected"
    latency = totals.corrected_latency_ms if corrected else totals.latency_ms
    histogram = totals.corrected_histogram if corrected else totals.histogram
    value = getattr(latency, slo.metric)
    g = result.generator
    return StepMeasure(
        asked_rate=asked_rate, users=users, duration_s=duration_s, run_id=result.run.run_id,
        intended_rps=g.intended_rps, achieved_rps=g.achieved_rps,
        shortfall_ratio=g.shortfall_ratio, requests=totals.count,
        throughput_rps=totals.throughput_rps, failures=sum(totals.failures.values()),
        error_rate=totals.failure_rate, latency_ms=value,
        latency_ci_ms=quantile_bounds_ms(histogram, slo.quantile), saturated=g.saturated,
        status=result.run.status)


def judge(m: StepMeasure, slo: Slo, plan: Plan) -> StepVerdict:
    """The step's verdict and why (the order in the module docstring)."""
    def verdict(outcome, reason: str) -> StepVerdict:
        return StepVerdict(outcome=outcome, reason=reason)

    if m.status != "complete":
        return verdict("cannot_tell", f"the step's run is {m.status}")
    if m.saturated:
        return verdict("cannot_tell", "the load generator was saturated: its latencies "
                                      "describe itself, not the service")
    if m.requests == 0:
        return verdict("cannot_tell", "no request completed in the measured window")
    if m.error_rate > slo.max_error_rate:
        return verdict("errors", f"{100 * m.error_rate:.2f}% of requests failed "
                                 f"(bound {slo.errors_text})")
    enough = m.requests >= plan.min_requests
    over = m.latency_ms is not None and m.latency_ms >= slo.threshold_ms
    if over and (enough or (m.latency_ci_ms is not None
                            and m.latency_ci_ms[0] >= slo.threshold_ms)):
        return verdict("latency", f"{slo.metric} {m.latency_ms:.1f} ms is not under "
                                  f"{slo.threshold_ms:g} ms")
    if not enough:
        return verdict("cannot_tell", f"{m.requests} requests, fewer than the "
                                      f"{plan.min_requests} a {slo.metric} needs")
    if m.shortfall_ratio is not None and m.shortfall_ratio > plan.max_shortfall:
        achieved = f"{m.achieved_rps:.1f}" if m.achieved_rps is not None else "?"
        return verdict("cannot_tell", f"the generator started {achieved} of the "
                                      f"{m.asked_rate:g} tasks/s asked "
                                      f"({100 * m.shortfall_ratio:.0f}% short) with the "
                                      "latency within the SLO: the rate was not tested")
    return verdict("held", f"{slo.metric} {m.latency_ms:.1f} ms, "
                           f"{100 * m.error_rate:.2f}% errors")


def conclude(steps: Sequence[CapacityStep], plan: Plan) -> Conclusion:
    """The highest rate that held below the first step that did not, and what broke."""
    held = []
    broke: CapacityStep | None = None
    for step in steps:
        if step.verdict.outcome != "held":
            broke = step
            break
        held.append(step)
    best = max(held, key=lambda s: s.achieved_rps or s.asked_rate, default=None)
    rate = None if best is None else round(best.achieved_rps or best.asked_rate, 3)
    rps = None if best is None else best.throughput_rps
    if broke is None:
        limit = "max_rate" if steps and steps[-1].asked_rate >= plan.max_rate else "max_steps"
        summary = (f"the SLO held at every step, up to {rate:g} tasks/s ({rps:.1f} req/s): "
                   f"the capacity is at least that (raise --{limit.replace('_', '-')})"
                   if best is not None else "no step ran")
        return Conclusion(capacity_rate=rate, capacity_rps=rps, broke_by=None,
                          broke_at_rate=None, summary=summary)
    at = broke.asked_rate
    why = broke.verdict.reason
    if broke.verdict.outcome == "cannot_tell":
        head = (f"held up to {rate:g} tasks/s ({rps:.1f} req/s); " if best is not None
                else "")
        summary = (f"{head}cannot tell beyond: at {at:g} tasks/s {why}; the capacity is "
                   "at least the last rate that held, not a limit of the service")
    elif best is None:
        summary = f"the SLO broke at the first step, {at:g} tasks/s ({why}): lower --start-rate"
    else:
        summary = (f"capacity {rate:g} tasks/s ({rps:.1f} req/s): the SLO broke on "
                   f"{broke.verdict.outcome} at {at:g} tasks/s ({why})")
    return Conclusion(capacity_rate=rate, capacity_rps=rps, broke_by=broke.verdict.outcome,
                      broke_at_rate=at, summary=summary)
