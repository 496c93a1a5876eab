"""`harness report --history`: one page of trends across the stored runs, change points found.

For the runs of one scenario in the results store (the newest `--last N`), one chart
per series, one point per run, oldest to newest: p95 per endpoint, throughput, each
cache's hit ratio, the ElevenLabs retry rate. Over each series the E-divisive detector
(`harness.analysis.changepoints`) looks for the runs where the level shifted; each
is a dashed line on its chart ("+42%") and a row in the change-point table. Runs the
gate did not pass are marked on every chart (regressed red, inconclusive amber, cannot
judge purple: points of their own), and every point links to its run's page: clicking
a chart opens the run under the cursor, the runs table links each run.

Links: a folder store's pages are where `harness run` wrote them
(`<store>/<id>/report.html`), linked relative to the history page; a PostgreSQL store
keeps each pushed page, which is written beside the history page
(`<page>-runs/<id>.html`) so the page and its links travel as one folder (a CI
artifact). A run without a page is listed without a link.

Same look and machinery as the single-run page: its stylesheet, script and uPlot
(`render.assets()`), charts as `series.chart` dicts moved into the embedded payload by
`render.extract_charts`; `history.js` only adds what a run axis needs (whole-run ticks,
points, click to open). Preparation is pure (`context`); `write_history` is the edge.
"""

from __future__ import annotations

import base64
import gzip
import json
import math
import os
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import jinja2

from harness.analysis.changepoints import ChangePoint, detect
from harness.errors import ConfigError
from harness.model.stored import LoadedRun
from harness.outputs.numbers import ms
from harness.outputs.report import render
from harness.outputs.report.series import chart
from harness.store import Store

PAYLOAD_FORMAT = "harness-history-data/1"
RUN_AXIS = {"label": "run, oldest to newest", "unit": "", "kind": "run"}
VERDICT_COLOURS = {"regressed": "#d62728", "inconclusive": "#e6a700", "cannot_judge": "#7b3fb5"}
"""The gate's verdicts marked on every chart (pass is the unmarked normal)."""
TEMPLATES = Path(__file__).parent / "templates"


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES),
                              autoescape=jinja2.select_autoescape(["html", "j2"]),
                              trim_blocks=True, lstrip_blocks=True,
                              undefined=jinja2.StrictUndefined)


@cache
def history_js() -> str:
    """The page's own script, run after the report's."""
    return (TEMPLATES / "history.js").read_text(encoding="utf-8")


def _finite(v: float | None) -> float | None:
    return float(v) if v is not None and math.isfinite(v) else None


def series_of(runs: list[LoadedRun]) -> list[dict]:
    """Every series of the page: {key, title, unit, values (one per run, None: the run
    has no such value)}; series with no value at all are left out."""
    keys: list[str] = []
    for r in runs:
        keys += [k for k in r.result.endpoints if k not in keys]
    out = []
    for key in keys:
        values = []
        for r in runs:
            e = r.result.endpoints.get(key)
            values.append(_finite(e.latency_ms.p95) if e is not None and e.count else None)
        out.append({"key": f"p95 {key}", "title": f"p95 {key}", "unit": "ms",
                    "label": "p95", "values": values})
    out.append({"key": "throughput", "title": "throughput, all endpoints", "unit": "req/s",
                "label": "throughput",
                "values": [_finite(r.result.totals.throughput_rps) for r in runs]})
    caches: list[str] = []
    for r in runs:
        caches += [c for c in (r.result.server.caches if r.result.server else {})
                   if c not in caches]
    for name in caches:
        values = []
        for r in runs:
            c = r.result.server.caches.get(name) if r.result.server else None
            values.append(_finite(c.hit_ratio * 100) if c and c.hit_ratio is not None else None)
        out.append({"key": f"hit ratio {name}", "title": f"cache hit ratio: {name}",
                    "unit": "%", "label": "hit ratio", "values": values})
    retries = []
    for r in runs:
        up = r.result.server.upstream if r.result.server else None
        retries.append(_finite(up.retry_rate * 100) if up and up.retry_rate is not None
                       else None)
    out.append({"key": "retry rate", "title": "ElevenLabs retry rate (retries per attempt)",
                "unit": "%", "label": "retry rate", "values": retries})
    return [s for s in out if any(v is not None for v in s["values"])]


def _change_text(cp: ChangePoint) -> str:
    c = cp.change
    return "from 0" if math.isinf(c) else f"{c * 100:+.1f}%"


def _series_chart(s: dict, runs: list[LoadedRun], points: list[ChangePoint]) -> dict:
    xs = list(range(1, len(runs) + 1))  # run numbers as the runs table shows them
    series = [{"label": s["label"], "color": "#1f6fb4"}]
    data: list[list] = [xs, s["values"]]
    for verdict, colour in VERDICT_COLOURS.items():
        marked = [v if r.meta.verdict == verdict else None for v, r in zip(s["values"], runs,
                                                                              strict=True)]
        if any(v is not None for v in marked):
            series.append({"label": f"gate: {verdict}", "color": colour, "width": 3})
            data.append(marked)
    marks = [[cp.index + 1, f"change {_change_text(cp)}"] for cp in points]
    note = (f"{len(points)} change point{'s' if len(points) != 1 else ''}" if points
            else "no change point")
    return chart(s["title"], s["label"], s["unit"], series, data, x=RUN_AXIS, marks=marks,
                 note=note)


def _run_row(n: int, r: LoadedRun, href: str | None) -> dict:
    m = r.meta
    return {"n": n + 1, "id": m.run_id, "href": href, "started": m.started_at[:19].replace("T", " "),
            "commit": m.commit, "profile": m.profile, "users": m.users, "status": m.status,
            "verdict": m.verdict or "not gated", "verdict_class": m.verdict or "",
            "rps": f"{r.result.totals.throughput_rps:,.1f}",
            "p95": ms(r.result.totals.latency_ms.p95)}


def _fmt(v: float | None) -> str:
    return "–" if v is None or not math.isfinite(v) else f"{v:,.1f}"


def _notes(runs: list[LoadedRun], scenario: str, others: list[str]) -> list[str]:
    notes = []
    for what, values in (("profiles", {r.meta.profile for r in runs}),
                         ("machines", {r.meta.machine or "unknown" for r in runs}),
                         ("user counts", {str(r.meta.users) for r in runs})):
        if len(values) > 1:
            notes.append(f"These runs differ in {what} ({', '.join(sorted(values))}): a change "
                         "point may be that difference, not the code.")
    if others:
        notes.append(f"Only scenario {scenario} is shown; the store also holds "
                     f"{', '.join(others)} (--scenario NAME).")
    return notes


def context(runs: list[LoadedRun], links: list[str | None], *, scenario: str,
            store: str, others: list[str] | None = None) -> dict:
    """The page as plain data (pure): runs oldest first, `links[i]` the href of run i's page."""
    all_series = series_of(runs)
    charts, table = [], []
    for s in all_series:
        points = detect(s["values"])
        charts.append(_series_chart(s, runs, points))
        for cp in points:
            r = runs[cp.index]
            table.append({"series": s["title"], "n": cp.index + 1, "id": r.meta.run_id,
                          "href": links[cp.index], "commit": r.meta.commit,
                          "before": _fmt(cp.before), "after": _fmt(cp.after), "unit": s["unit"],
                          "change": _change_text(cp),
                          "p": "<0.0001" if cp.pvalue < 1e-4 else f"{cp.pvalue:.4f}"})
    return {"scenario": scenario, "store": store, "charts": charts, "change_points": table,
            "runs": [_run_row(n, r, links[n]) for n, r in enumerate(runs)],
            "notes": _notes(runs, scenario, others or []),
            "message": "" if len(runs) >= 2 else
            f"{len(runs)} stored run{'s' if len(runs) != 1 else ''} of scenario {scenario}: "
            "a trend needs at least two (push runs with harness store push RUN)."}


def encode_payload(runs: list[LoadedRun], links: list[str | None],
                   charts: dict[str, dict]) -> str:
    """The page's data, as the single-run page embeds its own (gzip + base64 JSON):
    `{"format", "charts", "runs": [stored metadata + "href"], "current"}`, where `current`
    is the newest run's `record.run` so tools reading either page find a run there."""
    doc = {"format": PAYLOAD_FORMAT, "charts": render.json_safe(charts),
           "runs": [r.meta.model_dump() | {"href": h} for r, h in zip(runs, links, strict=True)],
           "current": ({"label": "newest run",
                        "record": {"run": json.loads(runs[-1].result.run.model_dump_json())}}
                       if runs else None)}
    text = json.dumps(doc, separators=(",", ":"), allow_nan=False)
    return base64.b64encode(gzip.compress(text.encode("utf-8"), compresslevel=6,
                                          mtime=0)).decode("ascii")


def render_history(runs: list[LoadedRun], links: list[str | None], *, scenario: str,
                   store: str, others: list[str] | None = None,
                   generated_at: datetime | None = None) -> str:
    """The whole page as one string (pure: `write_history` reads the store and writes)."""
    charts: dict[str, dict] = {}
    page = render.extract_charts(context(runs, links, scenario=scenario, store=store,
                                         others=others), charts)
    when = (generated_at or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M:%S UTC")
    return _environment().get_template("history.html.j2").render(
        **page, assets=render.assets(), history_js=history_js(),
        payload=encode_payload(runs, links, charts), payload_format=PAYLOAD_FORMAT,
        uplot_version=render.UPLOT_VERSION, generated_at=when)


def _links(store: Store, runs: list[LoadedRun], out: Path) -> list[str | None]:
    """Each run's page as an href relative to the history page (PostgreSQL: the stored
    pages are written beside it first)."""
    links: list[str | None] = []
    for r in runs:
        page = store.report(r.meta.run_id)
        if isinstance(page, bytes):
            target = out.parent / f"{out.stem}-runs" / f"{r.meta.run_id}.html"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(page)
            page = target
        links.append(Path(os.path.relpath(page.resolve(), out.parent.resolve())).as_posix()
                     if page is not None else None)
    return links


def write_history(store: Store, *, scenario: str | None = None, last: int | None = None,
                  out: Path) -> Path:
    """Render the history page of `store` to `out` and return its path: the runs of
    `scenario` (default: the newest stored run's), the newest `last` of them (default:
    all). ConfigError (exit 2) when the store holds no run of it, or `last` < 2."""
    if last is not None and last < 2:
        raise ConfigError("--last must be at least 2 (a trend needs two runs)")
    newest = store.list()
    if not newest:
        raise ConfigError(f"no runs in the results store {store.location} "
                          "(harness store push RUN, or harness run --results-store)")
    chosen = scenario or newest[-1].scenario
    others = sorted({r.scenario for r in newest} - {chosen})
    runs = store.load(scenario=chosen, last=last)
    if not runs:
        raise ConfigError(f"no runs of scenario {chosen!r} in the results store "
                          f"{store.location} (it holds {', '.join(others) or 'none'})")
    out.parent.mkdir(parents=True, exist_ok=True)
    html = render_history(runs, _links(store, runs, out), scenario=chosen,
                          store=store.location, others=others)
    from harness.model.files import write_text

    write_text(out, html)
    return out
