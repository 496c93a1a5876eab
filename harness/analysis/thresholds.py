"""Alert thresholds from a baseline and the policy: the one place they are computed.

`compute(results, policy, buckets)` turns the runs of a baseline and the
policy's tolerances and `[alerts]` settings into `Thresholds` (its types are
`harness.analysis.slo`'s): every SLO and
threshold alert with its number, the PromQL of the series it watches, its
`for`, severity and the baseline value it came from. The Prometheus rules and
their promtool tests (`harness.outputs.alerts`), the Sloth spec
(`harness.outputs.sloth`) and the Grafana dashboard (`harness.outputs.grafana`)
are renderings of this one value, so they cannot disagree. Pure: no I/O.

**Latency SLO per endpoint** ("share of requests faster than T"): T is the
baseline's `latency_percentile` (client side, the gate's figure: the median
over the baseline's runs) times (1 + that percentile's tolerance for the
endpoint), rounded *up* to the next bucket the service exports for
`http_request_duration_seconds`; the rule selects that bucket by its `le`
label written exactly as prometheus-client writes it (`floatToGoString`:
`0.25`, `1.0`), because an `le` that no series has makes a ratio that is never
computed and an alert that can never fire. The objective is the policy's
`latency_objective`, which may not exceed the percentile's share
(`policy.AlertSettings`): T is at least the baseline percentile, so the
baseline itself is inside the budget.

**Error SLO per endpoint**: 5xx answers (the `status` label of the same
histogram's `_count`, which counts every status) over all answers, objective
`error_objective`.

**Burn-rate alerts** as in the Google SRE workbook ("Alerting on SLOs",
multiwindow, multi-burn-rate; a 30-day budget): `WORKBOOK`. Each pair is an
alert of its own (same alert name, labels `long_window`/`short_window`), so
promtool can prove each fires just past its burn rate and stays quiet just
inside it.

**Threshold alerts** (causes, not symptoms: tickets): cache hit ratio per
cache (baseline - tolerance), ElevenLabs retry amplification and failure ratio
(baseline + tolerance), circuit breaker open, pool saturation and waiters (the
policy's limits), KPI view staleness (baseline x (1 + freshness tolerance), at
least `kpi_staleness_min`).

What cannot be derived (an endpoint whose T is past the largest bucket, a cache
the baseline never looked up, no ElevenLabs traffic) is left out and said in
`Thresholds.notes`; a baseline without endpoint latencies is a `ConfigError`.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence

from harness.analysis.slo import (
    Slo,
    Threshold,
    Thresholds,
    duration,
    exact,
    le_label,
    selector,
)
from harness.errors import ConfigError
from harness.model.endpoint import split_endpoint
from harness.model.gate import Tolerance
from harness.model.policy import PERCENTILES, Policy, tolerance_for
from harness.model.result import RunResult

# ---------------------------------------------------------------- deriving


def _median(values: Sequence[float | None]) -> float | None:
    found = [v for v in values if v is not None and math.isfinite(v)]
    return statistics.median(found) if found else None


def _worse(baseline: float, tol: Tolerance, share: bool) -> float:
    """The value `tol` allows on its bad side of `baseline` (points are of a share)."""
    if tol.relative:
        return baseline * (1 + tol.limit) if tol.higher_is_worse else baseline * (1 - tol.limit)
    step = tol.limit / 100 if share else tol.limit
    return baseline + step if tol.higher_is_worse else baseline - step


def _ms(value: float) -> str:
    return f"{value:.3g} ms" if value < 100 else f"{value:.0f} ms"


def _step(tol: Tolerance) -> str:
    """How a tolerance moves the baseline, for people: `x (1 + 25%)`, `- 5pt`."""
    sign = "+" if tol.higher_is_worse else "-"
    if tol.relative:
        return f"x (1 {sign} {tol.limit * 100:g}%)"
    return f"{sign} {tol.limit:g}pt"


def _pct(share: float) -> str:
    return f"{share * 100:.3g}%"


def compute(results: Sequence[RunResult], policy: Policy, buckets: Sequence[float], *,
            baseline: str = "baseline", for_scale: float = 1.0) -> Thresholds:
    """The thresholds of `results` (a baseline's runs) under `policy`; see the module doc.

    `buckets`: the finite upper bounds (seconds) of the service's
    `http_request_duration_seconds`. `for_scale` multiplies every `for`
    (0: alerts fire on the first evaluation that breaches; for tests)."""
    if not results:
        raise ConfigError(f"baseline {baseline} has no runs")
    if for_scale < 0 or not math.isfinite(for_scale):
        raise ConfigError(f"--for-scale must be 0 or more, not {for_scale}")
    a = policy.alerts
    bounds = sorted(float(b) for b in buckets if math.isfinite(b) and b > 0)
    if not bounds:
        raise ConfigError("the service's latency histogram has no finite buckets")

    def scaled(seconds: int) -> int:
        return round(seconds * for_scale)

    n = len(results)
    of = f"baseline {baseline}" + (f", median of {n} runs" if n > 1 else "")
    notes: list[str] = []
    slos: list[Slo] = []
    keys = sorted({k for r in results for k in r.endpoints})
    pct = a.latency_percentile
    measured = 0
    for key in keys:
        route = split_endpoint(key)[1]
        if not route.startswith("/"):
            notes.append(f"{key}: not a route template; no SLO")
            continue
        ms = _median([getattr(r.endpoints[key].latency_ms, pct) for r in results
                      if key in r.endpoints and r.endpoints[key].count > 0])
        if ms is None:
            notes.append(f"{key}: no {pct} latency in the baseline; no SLO")
            continue
        measured += 1
        count = sum(r.endpoints[key].count for r in results if key in r.endpoints)
        share = PERCENTILES[pct]
        if count < _enough(share):
            notes.append(f"{key}: its {pct} rests on {count} requests (10 beyond a {pct} "
                         f"take {_enough(share)}): its latency threshold is as noisy as "
                         f"that; record a longer baseline")
        tol = tolerance_for(policy, pct, key)
        target_s = _worse(ms, tol, share=False) / 1000
        bound = next((b for b in bounds if b >= target_s * (1 - 1e-9)), None)
        if bound is None:
            notes.append(f"{key}: {pct} {_ms(ms)} {_step(tol)} = "
                         f"{target_s:.3g} s is past the largest bucket ({le_label(bounds[-1])} s);"
                         f" no latency SLO")
        else:
            slos.append(Slo(
                kind="latency", endpoint=key, objective=a.latency_objective, job=a.job,
                baseline=ms, baseline_text=f"{pct} {_ms(ms)} ({of})",
                derivation=f"{pct} {_ms(ms)} {_step(tol)} = "
                           f"{_ms(target_s * 1000)}, up to the bucket le=\"{le_label(bound)}\"",
                page_for_s=scaled(a.page_for), ticket_for_s=scaled(a.ticket_for),
                threshold_s=bound, le=le_label(bound)))
        share = _median([_five_xx_share(r, key) for r in results])
        budget = 1 - a.error_objective
        if share is not None and share > budget:
            notes.append(f"{key}: the baseline's 5xx share {_pct(share)} is over the error "
                         f"budget {_pct(budget)}: its error alerts fire on the baseline itself")
        slos.append(Slo(
            kind="errors", endpoint=key, objective=a.error_objective, job=a.job, baseline=share,
            baseline_text=(f"5xx share {_pct(share)} ({of})" if share is not None
                           else f"5xx share not measured ({of} has no server metrics)"),
            derivation=f"objective {a.error_objective * 100:g}% without a 5xx",
            page_for_s=scaled(a.page_for), ticket_for_s=scaled(a.ticket_for)))
    if not measured:
        raise ConfigError(f"{of}: no endpoint has a {pct} latency to derive SLOs from "
                          f"(a baseline needs the endpoints' results)")
    thresholds = _threshold_alerts(results, policy, of, scaled, notes)
    return Thresholds(baseline=baseline, runs=n, slos=tuple(slos), thresholds=tuple(thresholds),
                      notes=tuple(notes), job=a.job, runbook=a.runbook)


def _enough(share: float) -> int:
    """Requests a baseline needs for its `share` quantile to have 10 requests beyond it."""
    return math.ceil(10 / (1 - share) - 1e-9)


def _five_xx_share(result: RunResult, key: str) -> float | None:
    server = result.server
    if server is None or key not in server.routes:
        return None
    route = server.routes[key]
    return route.errors_5xx / route.count if route.count > 0 else None


def _threshold_alerts(results: Sequence[RunResult], policy: Policy, of: str,
                      scaled: Callable[[int], int], notes: list[str]) -> list[Threshold]:
    a = policy.alerts
    w = duration(a.threshold_window)
    common = {"for_s": scaled(a.threshold_for), "window_s": a.threshold_window}
    servers = [r.server for r in results if r.server is not None]
    if not servers:
        notes.append(f"{of} has no server metrics: no cache alerts; the other threshold "
                     f"alerts without baseline values")
    out: list[Threshold] = []

    def sel(*matchers: tuple[str, str, str]) -> str:
        return selector(a.job, *matchers)

    def rate(metric: str, *matchers: tuple[str, str, str]) -> str:
        return f"sum(rate({metric}{sel(*matchers)}[{w}]))"

    for cache in sorted({c for s in servers for c in s.caches}):
        base = _median([s.caches[cache].hit_ratio for s in servers if cache in s.caches])
        if base is None:
            notes.append(f"cache {cache}: no lookups in the baseline; no hit ratio alert")
            continue
        tol = tolerance_for(policy, "hit_ratio", cache)
        value = exact(_worse(base, tol, share=True))
        if value <= 0:
            notes.append(f"cache {cache}: hit ratio {_pct(base)} {_step(tol)} leaves nothing "
                         f"to alert on")
            continue
        m = ("cache", "=", cache)
        hits = f"{rate('cache_hits_total', m)} + {rate('cache_stale_hits_total', m)}"
        out.append(Threshold(
            alert="CacheHitRatioLow", signal="cache_hit_ratio", title=f"Cache {cache} hit ratio",
            query=f"({hits}) / ({hits} + {rate('cache_misses_total', m)})", op="<", value=value,
            unit="share", baseline=base, baseline_text=f"hit ratio {_pct(base)} ({of})",
            derivation=f"{_pct(base)} {_step(tol)} = {_pct(value)}",
            labels={"cache": cache}, **common))

    ups = [s.upstream for s in servers if s.upstream is not None and s.upstream.logical_requests]
    out += _upstream_alerts(policy, ups, of, rate, sel, w, common, notes)

    pools = [s.db_pool for s in servers]
    sat = _median([p.in_use_max / p.max_size for p in pools
                   if p.in_use_max is not None and p.max_size])
    out.append(Threshold(
        alert="DbPoolSaturated", signal="pool_saturation",
        title="Database pool: connections in use / maximum",
        query=f"max by (instance) (avg_over_time(db_pool_in_use{sel()}[{w}]) / "
              f"avg_over_time(db_pool_max_size{sel()}[{w}]))",
        op=">", value=exact(a.pool_saturation_max), unit="share", baseline=sat,
        baseline_text=(f"at most {_pct(sat)} in use ({of})" if sat is not None
                       else f"not measured ({of})"),
        derivation=f"policy pool_saturation_max {a.pool_saturation_max:g}, averaged over {w}",
        by_instance=True, **common))
    waiting = _median([p.waiting_max for p in pools])
    out.append(Threshold(
        alert="DbPoolWaiters", signal="pool_waiting",
        title="Database pool: tasks waiting for a connection (least in the window)",
        query=f"max by (instance) (min_over_time(db_pool_waiting{sel()}[{w}]))",
        op=">", value=float(a.pool_waiting_max), unit="count", baseline=waiting,
        baseline_text=(f"at most {waiting:g} waiting ({of})" if waiting is not None
                       else f"not measured ({of})"),
        derivation=f"policy pool_waiting_max {a.pool_waiting_max}, at every scrape of {w}",
        by_instance=True, **common))
    stale = _median([s.kpi_view.get("staleness_max_s") for s in servers])
    tol = tolerance_for(policy, "freshness_p95")
    derived = _worse(stale, tol, share=False) if stale is not None else None
    value = exact(max(derived or 0.0, float(a.kpi_staleness_min)))
    why = (f"max({stale:.3g} s {_step(tol)}, kpi_staleness_min "
           f"{a.kpi_staleness_min} s) = {value:g} s" if stale is not None
           else f"kpi_staleness_min {a.kpi_staleness_min} s")
    out.append(Threshold(
        alert="KpiViewStale", signal="kpi_staleness",
        title="KPI view staleness, seconds (least in the window)",
        query=f"max by (instance) (min_over_time(kpi_view_staleness_seconds{sel()}[{w}]))",
        op=">", value=value, unit="seconds", baseline=stale,
        baseline_text=(f"staleness at most {stale:.3g} s ({of})" if stale is not None
                       else f"staleness not measured ({of})"),
        derivation=why, by_instance=True, **common))
    return out


def _upstream_alerts(policy: Policy, ups: list, of: str, rate: Callable[..., str],
                     sel: Callable[..., str], w: str, common: dict[str, int],
                     notes: list[str]) -> list[Threshold]:
    """ElevenLabs: retry amplification, failure ratio, breaker open.

    A baseline whose measured window made no ElevenLabs request (the agents cache
    answered everything: the usual case for a short healthy run) has no measured
    ratios; the alerts then start from the healthy ideal (1 attempt per request, no
    failures) plus the tolerance, and say so."""
    out: list[Threshold] = []
    requests = rate("elevenlabs_requests_total")
    if not ups:
        notes.append(f"{of} made no ElevenLabs request in its measured window (or has no "
                     f"server metrics): the "
                     f"ElevenLabs thresholds start from 1 attempt per request and no failures")
    measured = f"({of})"
    assumed = f"not measured ({of} made no ElevenLabs request); assumed"
    amp = _median([u.retry_amplification for u in ups])
    tol = tolerance_for(policy, "retry_amplification")
    base = amp if amp is not None else 1.0
    value = exact(_worse(base, tol, share=False))
    out.append(Threshold(
        alert="ElevenLabsRetryAmplificationHigh", signal="upstream_retry_amplification",
        title="ElevenLabs attempts per request",
        query=f"{rate('elevenlabs_attempts_total')} / {requests}", op=">", value=value,
        unit="ratio", baseline=amp,
        baseline_text=(f"{amp:.3g} attempts per request {measured}" if amp is not None
                       else f"{assumed} 1 attempt per request"),
        derivation=f"{base:.3g} {_step(tol)} = {value:.3g}", **common))
    fail = _median([u.failure_rate for u in ups])
    tol = tolerance_for(policy, "failure_rate")
    base = fail if fail is not None else 0.0
    value = exact(_worse(base, tol, share=True))
    if value >= 1:
        notes.append(f"ElevenLabs failure ratio {_pct(base)} {_step(tol)}: at or past 100%, "
                     f"no failure alert")
    else:
        out.append(Threshold(
            alert="ElevenLabsFailureRatioHigh", signal="upstream_failure_ratio",
            title="ElevenLabs failed requests",
            query=f"{rate('elevenlabs_requests_total', ('result', '=', 'failure'))} / "
                  f"{requests}",
            op=">", value=value, unit="share", baseline=fail,
            baseline_text=(f"failure ratio {_pct(fail)} {measured}" if fail is not None
                           else f"{assumed} no failures"),
            derivation=f"{_pct(base)} {_step(tol)} = {_pct(value)}", **common))
    opened = _median([u.circuit_open_max for u in ups])
    out.append(Threshold(
        alert="ElevenLabsCircuitBreakerOpen", signal="breaker_state",
        title="ElevenLabs circuit breaker (0 closed, 1 half-open, 2 open)",
        query=f"max by (instance) (max_over_time(elevenlabs_circuit_breaker_state{sel()}"
              f"[{w}]))",
        op=">=", value=2.0, unit="state", baseline=opened,
        baseline_text=(f"breaker state at most {opened:g} {measured}" if opened is not None
                       else f"breaker state {assumed} closed"),
        derivation=f"open (2) at some point of every {w} window", by_instance=True, **common))
    return out

