"""The page's tables and verdict from the report inputs: plain dicts and strings, no I/O.

Each function returns what one section of the template shows, already formatted
(the template only lays out), with a numeric `sort` value beside every number so the
sortable tables sort by value, not by text. A record that lacks what a section needs
(a v1 record without windows, a run without server metrics, an endpoint without
requests) gives the section a `message` saying so instead of an empty table. The
charts' data is in `series` and `distribution`; `context` puts everything together.
"""

from __future__ import annotations

import math

from harness.model.gate import CheckResult, GateResult
from harness.model.result import RunResult
from harness.outputs.numbers import ms
from harness.outputs.report import pooled
from harness.outputs.report.inputs import ReportInputs

PERCENTILE_COLUMNS = ("p50", "p95", "p99", "max")
SHARED_FACTS = {"scenario", "shape", "users", "spawn rate", "measured", "warm-up", "dataset",
                "faults", "target workers", "CPU", "logical CPUs"}
"""Facts a comparison must match (the gate refuses otherwise): a difference is a mismatch,
red; other differences (commit, profile, toggles) are what is being compared, amber."""
FAILURE_KINDS = {
    "http_4xx": "the service answered with a client error status",
    "http_5xx": "the service answered with a server error status",
    "timeout": "no answer within the client's timeout",
    "connection": "the connection failed or was reset",
    "tenant_leak": "the body carried another user's user_id",
    "invalid_body": "the body was not the JSON the route promises",
    "check_failed": "a response check of the scenario failed",
    "unexpected_status": "a status the scenario does not expect",
}


def num(value: float | None, digits: int = 1, unit: str = "") -> str:
    """A number as the page shows it ("–" for none), thousands separated."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:,.{digits}f}{unit}"


def p_text(p: float | None) -> str:
    """A p-value as a reader compares it with the misrate."""
    if p is None:
        return "–"
    return "<0.0001" if p < 1e-4 else f"{p:.4f}" if p < 0.1 else f"{p:.2f}"


def describe_failure(kind: str) -> str:
    """What a failure kind means (`http_503` -> the 5xx line with its status)."""
    if kind.startswith("http_") and kind[5:].isdigit():
        family = "http_5xx" if kind[5] == "5" else "http_4xx"
        return f"{FAILURE_KINDS[family]} ({kind[5:]})"
    return FAILURE_KINDS.get(kind, "recorded by the scenario")


def change_text(check: CheckResult) -> tuple[str, str]:
    """A check's change and interval as text: relative in %, absolute in points/units."""
    def fmt(v: float | None) -> str:
        if v is None:
            return "–"
        if check.tolerance.relative:
            return f"{(v - 1) * 100:+.1f}%"
        return f"{v:+.2f}{'pt' if check.unit == '%' else ' ' + check.unit}"
    interval = f"[{fmt(check.interval[0])}, {fmt(check.interval[1])}]" if check.interval else ""
    return fmt(check.change), interval


# ---------------------------------------------------------------- 1 verdict


def verdict(inputs: ReportInputs) -> dict:
    """The banner: the gate's verdict and top regressions, or why there is none."""
    gate = inputs.gate
    if gate is None:
        return {"state": "none", "title": "no baseline",
                "summary": "Not compared: no gate.json in the run and no --baseline given. "
                           "The figures below describe this run alone.",
                "lines": [], "notes": inputs.notes}
    titles = {"pass": "pass", "regressed": "regressed", "inconclusive": "inconclusive",
              "cannot_judge": "cannot judge"}
    lines = [f"hard failure: {h.kind.replace('_', ' ')}: {h.detail}" for h in gate.hard_failures]
    lines += [f"cannot judge: {why}" for why in gate.cannot_judge]
    worst = sorted((c for c in gate.checks if c.verdict == "regressed"),
                   key=lambda c: (c.advisory, -(c.p_value is None), c.p_value or 0))
    for c in worst[:5]:
        change, interval = change_text(c)
        lines.append(f"{c.name}: {ms(c.baseline)} → {ms(c.current)} {c.unit} ({change} "
                     f"{interval}, tolerance {c.tolerance.text}){' advisory' if c.advisory else ''}")
    if len(worst) > 5:
        lines.append(f"… and {len(worst) - 5} more regressed checks (section 12)")
    counts = {v: sum(1 for c in gate.checks if c.verdict == v)
              for v in ("regressed", "inconclusive", "pass", "improved")}
    notes = list(inputs.notes)
    if gate.allowed_mismatch:
        notes.append("compared across a mismatch: " + "; ".join(gate.mismatches))
    return {"state": gate.verdict, "title": titles[gate.verdict], "summary": gate.summary,
            "lines": lines, "counts": counts, "notes": notes,
            "against": f"{gate.baseline.label} ({', '.join(gate.baseline.run_ids)})"}


# ---------------------------------------------------------------- 2 run facts


def _toggles(result: RunResult) -> str:
    target = result.run.target
    if target is None or not target.toggles:
        return "not reported"
    off = sorted(k for k, on in target.toggles.items() if not on)
    on = sorted(k for k, v in target.toggles.items() if v)
    if not off:
        return "all on"
    if not on:
        return "all off"
    return "off: " + ", ".join(off)


def facts_of(result: RunResult) -> dict[str, str]:
    """What ran and where, label -> text, in the order the page lists them."""
    r, m, g = result.run, result.run.machine, result.generator
    procs = ", ".join(f"{p.role} {num(p.cpu_max, 0)}% max" for p in g.processes) or "–"
    health = ("SATURATED: latencies describe the generator" if g.saturated else "ok") + \
        f" (CPU {procs}; pacing shortfall {num(100 * g.shortfall_ratio, 1, '%') if g.shortfall_ratio is not None else '–'})"
    mem = f"{m.memory_bytes / 2**30:.1f} GiB" if m and m.memory_bytes else "–"
    return {
        "run": r.run_id, "status": r.status, "scenario": r.scenario,
        "profile": r.profile + (f" (service says {r.target.profile})"
                                if r.target and r.target.profile not in (None, r.profile) else ""),
        "toggles": _toggles(result), "users": str(r.users), "spawn rate": f"{r.spawn_rate:g}/s",
        "shape": r.shape, "measured": f"{r.duration_s:g} s", "warm-up": f"{r.warmup_s:g} s",
        "dataset": f"{r.dataset.preset} (seed {r.dataset.seed}, generator "
                   f"{r.dataset.generator_version}, anchor {r.dataset.anchor_date})",
        "faults": r.faults, "workers": f"{r.workers} Locust", "target workers": str(r.target_workers),
        "commit": (r.git_commit or "unknown")[:12] + (" (dirty)" if r.git_dirty else ""),
        "started": r.started_at[:19].replace("T", " ") + " UTC",
        "CPU": (m.cpu_model if m else None) or "–",
        "logical CPUs": str(m.logical_cpus if m else r.cpu_count),
        "memory": mem, "kernel": m.kernel if m else r.platform,
        "PostgreSQL": (m.postgres_version if m else None) or "–",
        "versions": ", ".join(f"{k} {v}" for k, v in sorted(m.versions.items())) if m else r.python,
        "pinning": ", ".join(f"{k}: {v}" for k, v in m.pinning.items()) if m and m.pinning
        else "none",
        "tracing": "off" if r.trace_sampling is None else f"sampling {r.trace_sampling:g}",
        "generator": health,
        "schema": f"v{result.schema_version}",
    }


def facts(inputs: ReportInputs) -> dict:
    """Run facts, the baseline's (A's) beside them, differences marked; a side of
    several runs shows its first run's facts and lists every run."""
    cur = facts_of(inputs.current.result)
    base = facts_of(inputs.baseline[0].result) if inputs.baseline else None
    rows = []
    for label, value in cur.items():
        other = base.get(label) if base else None
        differs = base is not None and label not in ("run", "started") and other != value
        rows.append({"label": label, "current": value, "baseline": other,
                     "class": ("mismatch" if label in SHARED_FACTS else "differs")
                     if differs else ""})
    if len(inputs.currents) > 1 or len(inputs.baseline) > 1:
        rows.insert(1, {"label": "runs", "class": "",
                        "current": ", ".join(s.result.run.run_id for s in inputs.currents),
                        "baseline": ", ".join(s.result.run.run_id for s in inputs.baseline)
                        if base else None})
    extra = []
    for name, sides in (("the baseline", inputs.baseline), ("this side", inputs.currents)):
        if len(sides) > 1:
            extra.append(f"{name} has {len(sides)} rounds; the first one's facts are shown")
    c = inputs.comparison
    columns = (c.b_label, c.a_label) if c else ("this run", "baseline")
    return {"rows": rows, "has_baseline": base is not None, "notes": extra,
            "columns": {"current": columns[0], "baseline": columns[1]},
            "run_notes": inputs.current.result.run.notes}


# ---------------------------------------------------------------- 3 endpoints


def _checks(gate: GateResult | None) -> dict[tuple[str, str], CheckResult]:
    return {(c.name.split(" ", 1)[0] if c.kind == "latency" else c.kind, c.subject): c
            for c in (gate.checks if gate else [])}


def _cell(name: str, cur: float | None, base: float | None, check: CheckResult | None) -> dict:
    out = {"value": ms(cur), "sort": cur if cur is not None else -1, "baseline": None,
           "change": "", "interval": "", "verdict": ""}
    if base is not None:
        out["baseline"] = ms(base)
        if check is not None and check.change is not None:
            out["change"], out["interval"] = change_text(check)
            out["verdict"] = check.verdict
        elif cur is not None and base:
            out["change"] = f"{(cur / base - 1) * 100:+.1f}%"
    return out


def endpoints(inputs: ReportInputs) -> dict:
    """One row per endpoint (and all together): counts, throughput, errors, percentiles."""
    currents = [s.result for s in inputs.currents]
    bases = [s.result for s in inputs.baseline]
    checks = _checks(inputs.gate)
    rows = []
    for key in [*pooled.keys(currents + bases), "all"]:
        e, b = pooled.endpoint(currents, key), pooled.endpoint(bases, key)
        if e is None or e.count == 0:
            rows.append({"key": key, "empty": True, "message":
                         "not in this run" if e is None else
                         "no requests in the measured window", "count": 0})
            continue
        failures = sum(e.failures.values())
        err_check = checks.get(("error_rate", key))
        row = {"key": key, "empty": False, "total": key == "all", "count": e.count,
               "count_text": f"{e.count:,}", "rps": num(e.throughput_rps, 2),
               "rps_sort": e.throughput_rps, "errors": f"{failures:,}",
               "error_rate": num(100 * e.failure_rate, 2, "%"), "error_sort": e.failure_rate,
               "error_verdict": err_check.verdict if err_check else "",
               "baseline_count": f"{b.count:,}" if b else None, "cells": {}}
        for p in PERCENTILE_COLUMNS:
            check = checks.get((p, key)) if key != "all" else None
            row["cells"][p] = _cell(p, getattr(e.latency_ms, p),
                                    getattr(b.latency_ms, p) if b else None, check)
        rows.append(row)
    message = None if any(r.endpoints for r in currents) else "no endpoint saw a request"
    return {"rows": rows, "columns": PERCENTILE_COLUMNS, "has_baseline": bool(inputs.baseline),
            "message": message}


SAMPLE_CHARS = 300
"""A sample message longer than this is cut for the page (the record keeps it whole)."""


def _error_rows(results: list[RunResult], side: str) -> list[dict]:
    out = []
    for key in pooled.keys(results):
        e = pooled.endpoint(results, key)
        for kind, n in sorted(e.failures.items()) if e and e.count else ():
            if n:
                out.append({"side": side, "endpoint": key, "kind": kind, "count": n,
                            "share": num(100 * n / e.count, 2, "%"),
                            "meaning": describe_failure(kind),
                            "samples": [m if len(m) <= SAMPLE_CHARS else m[:SAMPLE_CHARS] + "…"
                                        for m in e.error_samples.get(kind, [])]})
    return out


def errors(inputs: ReportInputs) -> dict:
    """Failures by kind per endpoint (measured window), what each kind means and the
    messages the generator kept for it (`error_samples`); both sides on a compare page."""
    c = inputs.comparison
    rows = _error_rows([s.result for s in inputs.currents], c.b_label if c else "")
    if c:
        rows += _error_rows([s.result for s in inputs.baseline], c.a_label)
    statuses = [{"endpoint": key, "status": status, "count": n}
                for key, by in inputs.current.result.correctness.unexpected_statuses.items()
                for status, n in sorted(by.items())]
    return {"rows": rows, "statuses": statuses, "sides": c is not None,
            "has_samples": any(r["samples"] for r in rows),
            "message": None if rows else "no failed requests in the measured window"}


# ---------------------------------------------------------------- 11 correctness, 12 checks


def correctness(inputs: ReportInputs) -> dict:
    """Tenant leaks and lost writes first (and loud), then degraded/partial responses
    and freshness."""
    result = inputs.current.result
    c = result.correctness
    lat = c.freshness.latency_ms
    kpi = result.server.kpi_view if result.server else {}
    w = result.writes
    writes = None if w is None else {
        "acknowledged": w.acknowledged, "found": w.found, "lost": w.lost,
        "duplicates": w.duplicates, "checked": w.checked, "error": w.error or "",
        "lost_ids": ", ".join(str(i) for i in w.lost_ids)}
    return {"tenant_leaks": c.tenant_leaks, "writes": writes, "degraded": c.degraded_responses,
            "partial": c.partial_responses,
            "per_endpoint": [{"endpoint": k, "degraded": e.degraded, "partial": e.partial,
                              "x_cache": ", ".join(f"{h} {n:,}" for h, n in sorted(e.x_cache.items()))
                              or "–"}
                             for k, e in result.endpoints.items()],
            "freshness": {"samples": c.freshness.samples, "timeouts": c.freshness.timeouts,
                          "p50": ms(lat.p50 if lat else None), "p95": ms(lat.p95 if lat else None),
                          "max": ms(lat.max if lat else None)},
            "kpi_view": [{"name": k, "value": num(v, 0 if v is not None and float(v).is_integer()
                                                  else 3)} for k, v in sorted(kpi.items())],
            "agreement": {"client": f"{result.agreement.client_count:,}",
                          "server": "–" if result.agreement.server_count is None
                          else f"{result.agreement.server_count:,}",
                          "diff": num(100 * result.agreement.diff_ratio, 2, "%")
                          if result.agreement.diff_ratio is not None else "–",
                          # as the console table: the allowance is said where there is a gap
                          "edge_users": result.agreement.edge_users
                          if result.agreement.diff_ratio else None,
                          "unexplained": num(100 * result.agreement.unexplained_ratio, 2, "%")
                          if result.agreement.unexplained_ratio is not None else "–"}}


def gate_checks(inputs: ReportInputs) -> dict:
    """Every check of the gate with its verdict, interval, tolerance and reason."""
    gate = inputs.gate
    if gate is None:
        return {"rows": [], "hard": [], "method": "", "misrate": None,
                "message": "no gate: the run was not compared with a baseline"}
    rows = []
    for c in gate.checks:
        change, interval = change_text(c)
        rows.append({"name": c.name, "kind": c.kind, "verdict": c.verdict,
                     "advisory": c.advisory, "baseline": ms(c.baseline), "current": ms(c.current),
                     "unit": c.unit, "change": change, "interval": interval,
                     "confidence": num(100 * c.confidence, 2, "%") if c.confidence else "–",
                     "tolerance": c.tolerance.text, "p": p_text(c.p_value),
                     "reason": c.reason + (f" — {c.advice}" if c.advice else ""),
                     "method": c.method})
    return {"rows": rows, "method": gate.method, "misrate": gate.misrate,
            "hard": [{"kind": h.kind, "detail": h.detail} for h in gate.hard_failures],
            "message": None if rows else "the gate made no checks"}
