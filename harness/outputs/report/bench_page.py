"""The benchmark page: one self-contained HTML file for a `harness bench` run.

In the run report's style and with its machinery: its stylesheet and script and
the vendored uPlot inlined (`render.assets()`), every chart a `series.chart` dict
moved into the embedded payload (`render.extract_charts`) and drawn by
`report.js`. Sections, in order:

1. **Verdict** (when compared, `harness bench --compare NAME`): the gate's verdict,
   its summary and the regressed benchmarks first; "not compared" otherwise.
2. **Machine**: CPU, cores, Python, system, commit, pytest-benchmark version, the
   sessions, for this run and the baseline side by side, what the gate refuses to
   compare across highlighted.
3. **Benchmarks**: per benchmark the median of its sessions' medians, the spread
   between sessions, the gate's verdict with interval and tolerance; each expands to
   its sessions' own stats (min, median, mean, stddev, rounds, iterations).
4. **Charts** per benchmark: each session's median, this run's and the baseline's
   (the session is the gate's unit), and, when the raw rounds are at hand, the
   rounds' distribution by percentile (the run report's "nines" axis).
5. **Gate checks**: every check with its verdict, interval, tolerance, p and reason.

The data is embedded once as gzip+base64 JSON (`#report-data`, format
`PAYLOAD_FORMAT`; `render.decode_payload` reads it back): the charts, each side's
sessions as a stored set keeps them (raw rounds only for a set of fewer than
`MIN_SESSIONS` sessions, as `harness bench --save` stores it, so the page stays
small), and the gate. `render_bench` is pure;
`write_bench` writes the file. Strings that look like credentials (a URL's
password, a bearer token, a `key=`/`token=` assignment) are replaced before
anything is encoded: the benchmarks' `extra_info` and the machine facts are free
text a suite fills.
"""

from __future__ import annotations

import base64
import gzip
import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import jinja2
import numpy as np

from harness.analysis import bench as ab
from harness.model.bench import Benchmark, BenchSet
from harness.model.files import write_text
from harness.model.gate import CheckResult, GateResult
from harness.outputs.report import render
from harness.outputs.report.prepare import change_text, p_text
from harness.outputs.report.series import chart

PAYLOAD_FORMAT = "harness-bench-data/1"
SESSION_AXIS = {"label": "session", "unit": "", "kind": "session"}
NINES_AXIS = {"label": "percentile", "unit": "", "kind": "nines"}
TITLES = {"pass": "pass", "regressed": "regressed", "inconclusive": "inconclusive",
          "cannot_judge": "cannot judge", "improved": "improved"}
_CREDENTIALS = (
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@]+):[^\s@/]+@"), r"\1:[redacted]@"),
    (re.compile(r"(?i)\b(bearer)\s+[^\s'\",;]+"), r"\1 [redacted]"),
    (re.compile(r"(?i)\b((?:xi[-_])?api[-_]?key|token|secret|password)(['\"]?\s*[:=]\s*['\"]?)"
                r"[^\s'\",;&]+"), r"\1\2[redacted]"),
)


@dataclass
class BenchInputs:
    """What the page shows: this run's sessions and, when compared, the baseline's and
    the gate's decision."""

    current: BenchSet
    run_id: str
    """The `reports/bench/<stamp>` directory's name."""
    baseline: BenchSet | None = None
    baseline_name: str | None = None
    gate: GateResult | None = None
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- sections


def verdict(inputs: BenchInputs) -> dict:
    """The banner: the gate's verdict and its regressed benchmarks, or "not compared"."""
    gate = inputs.gate
    if gate is None:
        return {"state": "none", "title": "not compared", "lines": [], "notes": inputs.notes,
                "summary": "No --compare: the figures below describe this run alone "
                           "(harness bench --compare NAME gates it against a stored result)."}
    worst = sorted((c for c in gate.checks if c.verdict == "regressed"),
                   key=lambda c: (c.advisory, c.p_value if c.p_value is not None else 1.0))
    lines = [f"{c.name}: {_with_unit(c.baseline, c.unit)} → {_with_unit(c.current, c.unit)} "
             f"({' '.join(change_text(c))}, tolerance {c.tolerance.text})" for c in worst[:5]]
    if len(worst) > 5:
        lines.append(f"… and {len(worst) - 5} more regressed benchmarks (gate checks below)")
    notes = list(inputs.notes)
    if gate.allowed_mismatch:
        notes.append("compared across a machine mismatch: " + "; ".join(gate.mismatches))
    counts = {v: sum(1 for c in gate.checks if c.verdict == v)
              for v in ("regressed", "inconclusive", "pass", "improved")}
    return {"state": gate.verdict, "title": TITLES.get(gate.verdict, gate.verdict),
            "summary": gate.summary, "lines": lines, "notes": notes, "counts": counts,
            "against": f"{gate.baseline.label} ({', '.join(gate.baseline.run_ids)})",
            "method": gate.method}


def _facts_of(s: BenchSet) -> dict[str, str]:
    first = s.sessions[0]
    machine = {k: _distinct(str(run.machine()[k]) for run in s.sessions)
               for k in first.machine()}
    info = first.machine_info or {}
    return {**machine,
            "kernel": _distinct(str((r.machine_info or {}).get("release", "–"))
                                for r in s.sessions),
            "host": str(info.get("node", "–")),
            "commit": s.git_commit or "–",
            "branch": _distinct(str((r.commit_info or {}).get("branch", "–"))
                                for r in s.sessions),
            "pytest-benchmark": _distinct(str(r.version or "–") for r in s.sessions),
            "sessions": str(len(s.sessions)),
            "measured": s.created_at or first.datetime or "–",
            "selection (-k)": s.k or "the whole suite",
            "raw rounds": "kept" if s.raw_rounds else "not kept (session summaries only)"}


def facts(inputs: BenchInputs) -> dict:
    """The machine and the build, this run's and the baseline's side by side."""
    cur = _facts_of(inputs.current)
    base = _facts_of(inputs.baseline) if inputs.baseline is not None else None
    machine_keys = set(inputs.current.sessions[0].machine())
    rows = []
    for key, value in cur.items():
        other = base.get(key) if base else None
        cls = ""
        if base is not None and other != value:
            cls = "mismatch" if key in machine_keys else "differs"
        rows.append({"label": key, "current": value, "baseline": other, "class": cls})
    return {"rows": rows, "has_baseline": base is not None}


def _distinct(values) -> str:
    return " / ".join(dict.fromkeys(values)) or "–"


def _value(v: float | None) -> str:
    if v is None:
        return "–"
    a = abs(v)
    return f"{v:,.0f}" if a >= 1000 else f"{v:.1f}" if a >= 100 else f"{v:.2f}" \
        if a >= 1 else f"{v:.3g}"


def _with_unit(v: float | None, unit: str) -> str:
    return "–" if v is None else f"{_value(v)} {unit}"


def _reason(check: CheckResult) -> str:
    """The check's reason and, when it adds something, its advice."""
    if check.advice and check.advice not in check.reason:
        return f"{check.reason} — {check.advice}"
    return check.reason


def _sessions_of(side: BenchSet | None, full: str) -> list[Benchmark]:
    if side is None:
        return []
    return [s.by_fullname()[full] for s in side.sessions if full in s.by_fullname()]


def _session_rows(held: list[Benchmark], factor: float) -> list[dict]:
    return [{"session": i, "min": _value(b.stats.min * factor),
             "median": _value(ab.session_median(b) * factor), "mean": _value(b.stats.mean * factor),
             "stddev": _value(float(getattr(b.stats, "stddev", 0.0) or 0.0) * factor),
             "rounds": f"{b.stats.rounds:,}", "iterations": f"{b.stats.iterations:,}"}
            for i, b in enumerate(held, 1)]


def _spread(medians: np.ndarray) -> str:
    """Session-to-session spread: the sd of the log session medians, as a percentage."""
    if len(medians) < 2 or (medians <= 0).any():
        return "–"
    return f"{np.expm1(np.std(np.log(medians), ddof=1)) * 100:.1f}%"


def benchmarks(inputs: BenchInputs) -> dict:
    """Per benchmark (this run's order, then the baseline's others): the summary row, its
    sessions' stats per side, its check, and its charts."""
    cur, base = inputs.current, inputs.baseline
    names = ab.subjects(*cur.sessions, *(base.sessions if base else []))
    checks = {c.subject: c for c in (inputs.gate.checks if inputs.gate else [])}
    order = list(dict.fromkeys([*cur.fullnames(), *(base.fullnames() if base else [])]))
    base_label = f"baseline {inputs.baseline_name}" if inputs.baseline_name else "baseline"
    out = []
    for full in order:
        held, held_base = _sessions_of(cur, full), _sessions_of(base, full)
        meds = np.array([ab.session_median(b) for b in held])
        bmeds = np.array([ab.session_median(b) for b in held_base])
        ref = float(np.median(meds)) if len(meds) else float(np.median(bmeds))
        unit, factor = ab.display_unit(ref)
        check = checks.get(names[full])
        change, interval = change_text(check) if check else ("", "")
        out.append({
            "name": names[full], "fullname": full, "unit": unit,
            "group": next((b.group for b in held + held_base if b.group), None),
            "median": _with_unit(float(np.median(meds)) * factor, unit) if len(meds) else "–",
            "median_sort": float(np.median(meds)) if len(meds) else 0.0,
            "baseline": _with_unit(float(np.median(bmeds)) * factor, unit) if len(bmeds)
            else "–",
            "spread": _spread(meds), "sessions": len(held),
            "verdict": check.verdict if check else None, "change": change,
            "interval": interval, "tolerance": check.tolerance.text if check else "",
            "reason": _reason(check) if check else "",
            "rows": _session_rows(held, factor),
            "baseline_rows": _session_rows(held_base, factor) if base is not None else None,
            "baseline_label": base_label,
            "extra": {k: v for b in held[:1] for k, v in b.extra_info.items()},
            "charts": _charts(names[full], held, held_base, unit, factor, base_label),
        })
    return {"rows": out, "has_baseline": base is not None,
            "message": None if out else "no benchmark in these sessions"}


def _charts(name: str, held: list[Benchmark], held_base: list[Benchmark], unit: str,
            factor: float, base_label: str) -> list[dict]:
    n = max(len(held), len(held_base))
    xs = list(range(1, n + 1))

    def col(side: list[Benchmark]) -> list[float | None]:
        vals = [round(ab.session_median(b) * factor, 6) for b in side]
        return vals + [None] * (n - len(vals))

    series, data = [], [xs]
    if held:
        series.append({"label": "this run"})
        data.append(col(held))
    if held_base:
        series.append({"label": base_label, "dash": True, "color": "#888"})
        data.append(col(held_base))
    charts = [chart(f"{name}: each session's median", "median round", unit, series, data,
                    x=SESSION_AXIS, note="the session is the gate's unit")]
    rounds = [(label, side) for label, side in (("this run", held), (base_label, held_base))
              if side and all(b.stats.data for b in side)]
    if rounds:
        charts.append(_rounds_chart(name, rounds, unit, factor))
    return charts


def _rounds_chart(name: str, sides: list[tuple[str, list[Benchmark]]], unit: str,
                  factor: float) -> dict:
    """Every round of every session pooled, by percentile on the "nines" axis (x = 1/(1-q)),
    each side up to the percentile its number of rounds resolves."""
    pooled = [np.sort(np.concatenate([np.asarray(b.stats.data) for b in side]))
              for _, side in sides]
    top = max(len(p) for p in pooled)
    nines = np.unique(np.round(10 ** np.linspace(0, np.log10(max(top, 2)), 41), 6))
    data = [nines.tolist()]
    series = []
    for (label, _), values in zip(sides, pooled, strict=True):
        q = 1 - 1 / nines
        idx = np.minimum(np.ceil(q * len(values)).astype(int) - 1, len(values) - 1).clip(0)
        col = np.round(values[idx] * factor, 6).tolist()
        data.append([v if x <= len(values) else None for x, v in zip(nines, col, strict=True)])
        series.append({"label": label, **({"dash": True, "color": "#888"}
                                          if label != "this run" else {})})
    seen = [v for col in data[1:] for v in col if v]
    wide = bool(seen) and max(seen) > 10 * min(seen)  # a log axis only for a long tail
    return chart(f"{name}: rounds by percentile", "round time", unit, series, data,
                 x=NINES_AXIS, log_y=wide, note="all sessions' rounds pooled")


def gate_checks(inputs: BenchInputs) -> dict:
    """Every check of the gate: verdict, interval, tolerance, p and reason."""
    gate = inputs.gate
    if gate is None:
        return {"rows": [], "method": "", "misrate": None,
                "message": "no gate: this run was not compared (harness bench --compare NAME)"}
    rows = []
    for c in gate.checks:
        change, interval = change_text(c)
        rows.append({"name": c.name, "verdict": c.verdict, "advisory": c.advisory,
                     "baseline": _with_unit(c.baseline, c.unit),
                     "current": _with_unit(c.current, c.unit), "change": change,
                     "interval": interval, "tolerance": c.tolerance.text,
                     "p": p_text(c.p_value), "reason": _reason(c)})
    return {"rows": rows, "method": gate.method, "misrate": gate.misrate,
            "message": None if rows else "the gate made no checks"}


# ---------------------------------------------------------------- rendering


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(render.PACKAGE / "templates"),
                              autoescape=jinja2.select_autoescape(["html", "j2"]),
                              trim_blocks=True, lstrip_blocks=True,
                              undefined=jinja2.StrictUndefined)


def scrub(node: object) -> object:
    """Every string of `node` with credential-looking parts replaced; NaN and infinity
    (which JSON cannot hold) as None, a gap in a chart."""
    if isinstance(node, str):
        for pattern, replacement in _CREDENTIALS:
            node = pattern.sub(replacement, node)
        return node
    if isinstance(node, float):
        return node if math.isfinite(node) else None
    if isinstance(node, dict):
        return {scrub(k): scrub(v) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [scrub(v) for v in node]
    return node


def _side(label: str, run_id: str, s: BenchSet) -> dict:
    """One side of the payload: what ran, and its sessions as a stored set keeps them."""
    kept = BenchSet.of(s.sessions, keep_rounds=s.raw_rounds and len(s.sessions)
                       < ab.MIN_SESSIONS, created_at=s.created_at, k=s.k)
    return {"label": label, "record": {
        "run": {"run_id": run_id, "created_at": s.created_at, "k": s.k,
                "git_commit": s.git_commit, "sessions": len(s.sessions)},
        "set": json.loads(kept.dump())}}


def encode_payload(inputs: BenchInputs, charts: dict[str, dict]) -> str:
    """`{"format", "charts", "current": side, "baseline": [side], "gate"}`, credentials
    scrubbed, as gzip + base64 (`render.decode_payload` reads it back)."""
    doc = {"format": PAYLOAD_FORMAT, "charts": charts,
           "current": _side("this run", inputs.run_id, inputs.current),
           "baseline": [_side(f"baseline {inputs.baseline_name or ''}".strip(),
                              inputs.baseline_name or "baseline", inputs.baseline)]
           if inputs.baseline is not None else [],
           "gate": inputs.gate.model_dump(mode="json") if inputs.gate else None}
    text = json.dumps(scrub(doc), separators=(",", ":"), allow_nan=False)
    return base64.b64encode(gzip.compress(text.encode("utf-8"), compresslevel=6,
                                          mtime=0)).decode("ascii")


def context(inputs: BenchInputs) -> dict:
    """Every section of the page, in page order, as plain data."""
    return {"verdict": verdict(inputs), "facts": facts(inputs),
            "benchmarks": benchmarks(inputs), "gate": gate_checks(inputs),
            "run": {"id": inputs.run_id, "sessions": len(inputs.current.sessions),
                    "benchmarks": len(inputs.current.fullnames()), "k": inputs.current.k,
                    "baseline": inputs.baseline_name}}


def render_bench(inputs: BenchInputs, generated_at: datetime | None = None) -> str:
    """The whole page as one string (no file, no network)."""
    charts: dict[str, dict] = {}
    sections = render.extract_charts(scrub(context(inputs)), charts)
    when = (generated_at or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M:%S UTC")
    return _environment().get_template("bench.html.j2").render(
        **sections, assets=render.assets(), payload=encode_payload(inputs, charts),
        payload_format=PAYLOAD_FORMAT, uplot_version=render.UPLOT_VERSION, generated_at=when)


def write_bench(inputs: BenchInputs, out: Path) -> Path:
    """Render and write the page atomically; the path."""
    write_text(out, render_bench(inputs))
    return out

