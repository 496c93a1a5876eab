"""Prometheus alerting rules from `Thresholds`, and the promtool unit tests that prove them.

`rules(th)` is the text of a rule file (`promtool check rules` passes on it):

* `harness-slo-recordings`: per SLO (`slo` = latency | errors, `method`,
  `route`) its error ratio over every window of the workbook
  (`slo:sli_error:ratio_rate5m` ... `ratio_rate3d`, Sloth's names), and its
  objective and budget (`slo:objective:ratio`, `slo:error_budget:ratio`);
* `harness-slo-alerts`: per SLO one alert per burn-rate pair
  (`EndpointLatencyBudgetBurn` / `EndpointErrorBudgetBurn`, labels
  `severity`, `long_window`, `short_window`, `burn_rate`): both windows' ratio
  above burn rate x budget;
* `harness-threshold-alerts`: `CacheHitRatioLow`, `ElevenLabsRetryAmplificationHigh`,
  `ElevenLabsFailureRatioHigh`, `ElevenLabsCircuitBreakerOpen`, `DbPoolSaturated`,
  `DbPoolWaiters`, `KpiViewStale`.

Every alert has `for`, a `severity` label (page | ticket) and annotations
naming the baseline value, the threshold and how it was derived, and a
`runbook_url` into `docs/runbook.md`. Annotations are plain text (no `$value`
templates), so the unit tests can state them exactly.

`unit_tests(th, rules_file)` is a `promtool test rules` file: for every alert
(each burn-rate pair of each SLO, each threshold alert) one test on synthetic
series just past its threshold (it fires, and so does every pair it implies)
and one just inside (it stays quiet).
"""

from __future__ import annotations

from typing import Any

import yaml

from harness.analysis.slo import (
    HTTP_HISTOGRAM,
    WINDOWS_S,
    BurnWindow,
    Slo,
    Threshold,
    Thresholds,
    duration,
    number,
    selector,
)

RECORDINGS = "harness-slo-recordings"
SLO_ALERTS = "harness-slo-alerts"
THRESHOLD_ALERTS = "harness-threshold-alerts"


def ratio_record(window_s: int) -> str:
    """The recording rule name of an SLO's error ratio over one window."""
    return f"slo:sli_error:ratio_rate{duration(window_s)}"


def _matchers(labels: dict[str, str]) -> str:
    return selector("", *((k, "=", v) for k, v in labels.items()))


# ---------------------------------------------------------------- the rules


def slo_annotations(th: Thresholds, slo: Slo, w: BurnWindow) -> dict[str, str]:
    what = (f"requests faster than {slo.le} s" if slo.kind == "latency"
            else "requests answered without a 5xx")
    return {
        "summary": f"{slo.endpoint}: {slo.kind} error budget burning {number(w.factor)}x "
                   f"over {w.long} and {w.short}",
        "description": f"Objective {number(slo.objective * 100)}% of {what} (30-day budget "
                       f"{number(slo.budget * 100)}%); the error ratio is above "
                       f"{number(slo.burn_threshold(w))} ({number(w.factor)}x the budget) over "
                       f"both {w.long} and {w.short}: at this rate "
                       f"{number(round(w.budget_spent * 100, 6))}% of the budget goes in {w.long}.",
        "baseline": slo.baseline_text,
        "threshold": number(slo.burn_threshold(w)),
        "objective": number(slo.objective),
        "derivation": slo.derivation,
        "runbook_url": th.runbook_url(slo.alert),
    }


def slo_alert_labels(slo: Slo, w: BurnWindow) -> dict[str, str]:
    """Static labels: the SLO's own too (promtool's lint wants rules of one name told
    apart by their labels, and they say which endpoint even before evaluation)."""
    return {"severity": w.severity, **slo.labels, "long_window": w.long,
            "short_window": w.short, "burn_rate": number(w.factor)}


def threshold_annotations(th: Thresholds, t: Threshold) -> dict[str, str]:
    subject = "".join(f" {k}={v}" for k, v in t.labels.items())
    return {
        "summary": f"{t.title}{subject} {t.op} {number(t.value)} for {duration(t.for_s)}",
        "description": f"{t.title}{subject} over {duration(t.window_s)} is {t.op} "
                       f"{number(t.value)} ({t.derivation}).",
        "baseline": t.baseline_text,
        "threshold": number(t.value),
        "derivation": t.derivation,
        "runbook_url": th.runbook_url(t.alert),
    }


def threshold_alert_labels(t: Threshold) -> dict[str, str]:
    return {"severity": t.severity, **t.labels}


def burn_expr(slo: Slo, w: BurnWindow) -> str:
    sel = _matchers(slo.labels)
    limit = number(slo.burn_threshold(w))
    return "\n".join((
        f"max without (window) ({ratio_record(w.long_s)}{sel} > {limit})",
        "and",
        f"max without (window) ({ratio_record(w.short_s)}{sel} > {limit})",
    ))


def rule_groups(th: Thresholds) -> list[dict[str, Any]]:
    """The rule file's groups (what `rules` writes as YAML)."""
    records: list[dict[str, Any]] = []
    for slo in th.slos:
        for window in WINDOWS_S:
            records.append({"record": ratio_record(window),
                            "expr": slo.ratio_query(duration(window)),
                            "labels": {**slo.labels, "window": duration(window)}})
        records.append({"record": "slo:objective:ratio", "expr": f"vector({number(slo.objective)})",
                        "labels": slo.labels})
        records.append({"record": "slo:error_budget:ratio",
                        "expr": f"vector({number(slo.budget)})", "labels": slo.labels})
    slo_alerts = [{
        "alert": slo.alert, "expr": burn_expr(slo, w), "for": duration(slo.for_s(w)),
        "labels": slo_alert_labels(slo, w), "annotations": slo_annotations(th, slo, w),
    } for slo in th.slos for w in th.windows]
    threshold_alerts = [{
        "alert": t.alert, "expr": t.expr, "for": duration(t.for_s),
        "labels": threshold_alert_labels(t), "annotations": threshold_annotations(th, t),
    } for t in th.thresholds]
    return [{"name": RECORDINGS, "rules": records},
            {"name": SLO_ALERTS, "rules": slo_alerts},
            {"name": THRESHOLD_ALERTS, "rules": threshold_alerts}]


def header(th: Thresholds, source: str) -> str:
    lines = [(f"# Generated by `harness alerts export` from baseline {th.baseline} "
              f"({th.runs} run{'s' if th.runs != 1 else ''}) and {source}."),
             ("# Do not edit: change the policy or the baseline and export again "
              "(docs/runbook.md explains each alert).")]
    lines += [f"# Note: {note}" for note in th.notes]
    return "\n".join(lines) + "\n"


class _Dumper(yaml.SafeDumper):
    """Block style everywhere; multi-line strings as `|` blocks."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump(doc: object) -> str:
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                     width=1_000_000, allow_unicode=True)


def rules(th: Thresholds, source: str = "the policy") -> str:
    """The Prometheus rule file."""
    return header(th, source) + dump({"groups": rule_groups(th)})


# ---------------------------------------------------------------- promtool unit tests


INTERVAL_S = 60
INSTANCE = "target:8000"
RATE = 1000.0
"""Synthetic requests (or lookups) per interval."""


def _series(metric: str, labels: dict[str, str], per_step: float, steps: int,
            start: float = 0.0) -> dict[str, str]:
    return {"series": f"{metric}{_matchers(labels)}",
            "values": f"{number(start)}+{number(per_step)}x{steps}"}


def _gauge(metric: str, labels: dict[str, str], value: float, steps: int) -> dict[str, str]:
    return {"series": f"{metric}{_matchers(labels)}", "values": f"{number(value)}+0x{steps}"}


def _target(th: Thresholds) -> dict[str, str]:
    return {**({"job": th.job} if th.job else {}), "instance": INSTANCE}


def _eval_s(th: Thresholds) -> int:
    """Long enough for every `for` to pass, on whole intervals."""
    longest = max([s.for_s(w) for s in th.slos for w in th.windows]
                  + [t.for_s for t in th.thresholds] + [0])
    return (longest // INTERVAL_S + 2) * INTERVAL_S


def slo_series(th: Thresholds, slo: Slo, ratio: float, steps: int) -> list[dict[str, str]]:
    """Requests of one endpoint whose error ratio is `ratio` in every window."""
    base = {**_target(th), "method": slo.method, "route": slo.route}
    name = f"{HTTP_HISTOGRAM}_count"
    if slo.kind == "latency":
        return [_series(name, {**base, "status": "200"}, RATE, steps),
                _series(f"{HTTP_HISTOGRAM}_bucket", {**base, "status": "200", "le": slo.le or ""},
                        RATE * (1 - ratio), steps)]
    return [_series(name, {**base, "status": "200"}, RATE * (1 - ratio), steps),
            _series(name, {**base, "status": "500"}, RATE * ratio, steps)]


def probes(t: Threshold) -> tuple[float, float]:
    """(just past, just inside) the threshold, in the signal's unit."""
    v = t.value
    if t.unit in ("count", "state"):  # integers
        past, inside = (v + 1, v) if t.op == ">" else (v, v - 1)
    elif t.op == "<":
        past, inside = v * 0.95, v + min(v * 0.05, (1 - v) / 2 if t.unit == "share" else v)
    else:
        past = v * 1.05 if v > 0 else 0.01
        if t.unit == "share" and past >= 1:
            past = (v + 1) / 2
        inside = v * 0.95
    assert t.breached(past) and not t.breached(inside), (t.alert, v, past, inside)
    return past, inside


def threshold_series(th: Thresholds, t: Threshold, x: float,
                     steps: int) -> list[dict[str, str]]:
    """Series on which `t`'s watched quantity is `x` throughout."""
    target = _target(th)
    if t.signal == "cache_hit_ratio":
        labels = {**target, **t.labels}
        return [_series("cache_hits_total", labels, RATE * x, steps),
                _series("cache_stale_hits_total", labels, 0, steps),
                _series("cache_misses_total", labels, RATE * (1 - x), steps)]
    if t.signal == "upstream_retry_amplification":
        return [_series("elevenlabs_requests_total", {**target, "result": "success"}, RATE, steps),
                _series("elevenlabs_attempts_total", target, RATE * x, steps)]
    if t.signal == "upstream_failure_ratio":
        return [_series("elevenlabs_requests_total", {**target, "result": "success"},
                        RATE * (1 - x), steps),
                _series("elevenlabs_requests_total", {**target, "result": "failure"},
                        RATE * x, steps)]
    if t.signal == "breaker_state":
        return [_gauge("elevenlabs_circuit_breaker_state", target, x, steps)]
    if t.signal == "pool_saturation":
        return [_gauge("db_pool_in_use", target, 20 * x, steps),
                _gauge("db_pool_max_size", target, 20, steps)]
    if t.signal == "pool_waiting":
        return [_gauge("db_pool_waiting", target, x, steps)]
    if t.signal == "kpi_staleness":
        return [_gauge("kpi_view_staleness_seconds", target, x, steps)]
    raise ValueError(f"no synthetic series for {t.signal}")


def _slo_expected(th: Thresholds, slo: Slo, ratio: float) -> list[dict[str, Any]]:
    return [{"exp_labels": {**slo.labels, **slo_alert_labels(slo, w)},
             "exp_annotations": slo_annotations(th, slo, w)}
            for w in th.windows if ratio > slo.burn_threshold(w)]


def _threshold_expected(th: Thresholds, t: Threshold, fires: bool) -> list[dict[str, Any]]:
    if not fires:
        return []
    labels = threshold_alert_labels(t)
    if t.by_instance:
        labels = {"instance": INSTANCE, **labels}
    return [{"exp_labels": labels, "exp_annotations": threshold_annotations(th, t)}]


def unit_tests(th: Thresholds, rules_file: str) -> str:
    """The `promtool test rules` file for `rules(th)` saved as `rules_file` (a path relative
    to the test file).

    Series of different subjects never share a name and labels, so one test holds
    many alerts' probes at once (18 tests instead of one per probe: promtool
    evaluates every rule of the file in each test, and a test per probe made the
    file take half a minute): per SLO kind and burn-rate pair one test with every
    endpoint just past that pair's threshold and one with every endpoint just
    inside it; one test with every threshold alert just past and one just inside.
    Each states exactly which alerts of the name fire (the pairs of lower burn rates
    fire too on a constant error ratio)."""
    eval_s = _eval_s(th)
    steps = eval_s // INTERVAL_S + 1
    at = duration(eval_s)
    tests: list[dict[str, Any]] = []
    for kind in ("latency", "errors"):
        slos = [s for s in th.slos if s.kind == kind]
        if not slos:
            continue
        for w in th.windows:
            for label, factor in (("just past", 1.05), ("just inside", 0.95)):
                ratios = {s.endpoint: s.burn_threshold(w) * factor for s in slos}
                tests.append({
                    "name": f"{slos[0].alert} {w.long}/{w.short} at {number(w.factor)}x: "
                            f"every endpoint {label} ({number(factor)} x its threshold)",
                    "interval": duration(INTERVAL_S),
                    "input_series": [x for s in slos
                                     for x in slo_series(th, s, ratios[s.endpoint], steps)],
                    "alert_rule_test": [{
                        "eval_time": at, "alertname": slos[0].alert,
                        "exp_alerts": [e for s in slos
                                       for e in _slo_expected(th, s, ratios[s.endpoint])]}],
                })
    for index, label in ((0, "just past"), (1, "just inside")):
        probed = [(t, probes(t)[index]) for t in th.thresholds]
        names = list(dict.fromkeys(t.alert for t in th.thresholds))
        tests.append({
            "name": f"threshold alerts: each {label} its threshold",
            "interval": duration(INTERVAL_S),
            "input_series": [x for t, v in probed for x in threshold_series(th, t, v, steps)],
            "alert_rule_test": [{
                "eval_time": at, "alertname": name,
                "exp_alerts": [e for t, v in probed if t.alert == name
                               for e in _threshold_expected(th, t, t.breached(v))]}
                for name in names],
        })
    doc = {"rule_files": [rules_file], "evaluation_interval": duration(INTERVAL_S),
           "tests": tests}
    return (f"# Unit tests of {rules_file}, generated with it by `harness alerts export`:\n"
            f"# promtool test rules <this file>\n") + dump(doc)
