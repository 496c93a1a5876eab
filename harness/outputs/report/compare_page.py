"""The compare page (`harness report --compare`, and the page `harness ab` writes). Pure.

The same sections as the single-run page (`render.context`: A in the baseline's place,
B in the run's, both series overlaid and labelled), in the order a reader of a
comparison needs: the verdict banner, then the verdicts themselves (paired by round for
an ab job), then how each round moved on its own (`AbRecord.round_changes`: a table
and a chart, so one odd round shows) and every run of both sides, then the facts and
the rest. Rendered by `render.render_page` into `templates/compare.html.j2`.
"""

from __future__ import annotations

from datetime import datetime

from harness.model.gate import CheckResult
from harness.outputs.report import render
from harness.outputs.report.inputs import ReportInputs, Side
from harness.outputs.report.prepare import change_text, num
from harness.outputs.report.series import chart

ROUND_AXIS = {"label": "round", "unit": "", "kind": "round"}
SECTION_IDS = ["verdict", "gate", "rounds", "facts", "endpoints", "latency", "distribution",
               "throughput", "caches", "elevenlabs", "database", "traces", "correctness"]
"""The compare page's sections, in page order: the verdicts first."""


def round_value(check: CheckResult, value: float | None) -> str:
    """One round's change as the gate shows its own (`compare._result`): a ratio as a
    relative change, a difference of shares in points."""
    if value is None:
        return "–"
    if check.unit == "%":
        return f"{100 * value:+.2f}pt"
    return f"{(value - 1) * 100:+.1f}%"


def round_changes(inputs: ReportInputs) -> dict:
    """Per check: each round's change alone, then the gate's combined change and
    verdict; and a chart of the latency checks' per-round change."""
    c = inputs.comparison
    if c is None or not c.rounds:
        return {"rows": [], "rounds": [], "chart": None,
                "message": "the sides are not paired by round (not one harness ab job): "
                           "there are no per-round changes"}
    rows = []
    for check in inputs.gate.checks if inputs.gate else []:
        change, interval = change_text(check)
        rows.append({"name": check.name, "verdict": check.verdict, "advisory": check.advisory,
                     "rounds": [round_value(check, r["changes"].get(check.name))
                                for r in c.rounds],
                     "combined": change, "interval": interval})
    latency = [ch for ch in (inputs.gate.checks if inputs.gate else [])
               if ch.kind == "latency" and ch.name.startswith("p95 ")]
    plot = None
    xs = [float(r["round"]) for r in c.rounds]
    columns = [[None if (v := r["changes"].get(ch.name)) is None else round(100 * (v - 1), 2)
                for r in c.rounds] for ch in latency]
    kept = [(ch, col) for ch, col in zip(latency, columns, strict=True)
            if any(v is not None for v in col)]  # an endpoint without requests: no line
    latency, columns = [ch for ch, _ in kept], [col for _, col in kept]
    if columns:
        plot = chart("p95 change per round, B against A", "B / A − 1", "%",
                     [{"label": ch.subject} for ch in latency], [xs, *columns], x=ROUND_AXIS,
                     note="each round's B against its own A; the gate combines the rounds")
    return {"rows": rows, "rounds": c.rounds, "chart": plot, "message": None}


def _run_row(side: str, round_no: int | str, s: Side) -> dict:
    r = s.result
    c = r.correctness
    return {"side": side, "round": round_no, "run": r.run.run_id, "status": r.run.status,
            "requests": f"{r.totals.count:,}", "rps": num(r.totals.throughput_rps, 2),
            "errors": num(100 * r.totals.failure_rate, 2, "%"), "leaks": c.tenant_leaks,
            "degraded": f"{c.degraded_responses:,}",
            "generator": "SATURATED" if r.generator.saturated else "ok",
            "started": r.run.started_at[:19].replace("T", " ")}


def runs(inputs: ReportInputs) -> list[dict]:
    """Every run of both sides, in round order: what each measured, tenant leaks loud."""
    c = inputs.comparison
    numbers = [r["round"] for r in c.rounds] if c and c.rounds else []
    out = []
    for name, sides in (("A", inputs.baseline), ("B", inputs.currents)):
        for i, s in enumerate(sides):
            out.append(_run_row(name, numbers[i] if i < len(numbers) else "–", s))
    return sorted(out, key=lambda r: (str(r["round"]), r["started"]))


def context(inputs: ReportInputs) -> dict:
    """The single-run page's sections for B against A, and the compare page's own."""
    c = inputs.comparison
    assert c is not None, "a compare page needs ReportInputs.comparison"
    sections = render.context(inputs)
    multi = len(inputs.currents) > 1 or len(inputs.baseline) > 1
    note = (f"B's {'first ' if multi else ''}run ({inputs.current.result.run.run_id}) in "
            "full; A's figures beside it where a column or a dashed series has room for them")
    sections.update(comparison=c, server_note=note, rounds=round_changes(inputs),
                    runs=runs(inputs),
                    sides={"a": {"label": c.a_label, "detail": c.a_detail},
                           "b": {"label": c.b_label, "detail": c.b_detail}})
    return sections


def render_compare(inputs: ReportInputs, generated_at: datetime | None = None) -> str:
    """The whole compare page as one string (`comparison.write_compare` writes it)."""
    return render.render_page(inputs, "compare.html.j2", context(inputs), generated_at)
