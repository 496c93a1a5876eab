"""The single-run page: sections prepared, data embedded, one self-contained HTML file.

`context` gathers every section (`prepare`, `series`, `distribution`, `server`) into
one dict for the template; `render_report` renders `templates/report.html.j2` with
jinja2 (autoescaped), inlining the vendored uPlot, the page's stylesheet and script,
so the file opens from a CI artifact with no network at all.

The run's data is embedded once, as gzip-compressed JSON in base64 (`<script
type="application/gzip+base64" id="report-data">`): the charts' columns, the whole
record (`result.json`), the gate's decision, and the interval log (`windows.hlog`,
every window's raw and corrected histograms, as the file holds them), for the current
run and the baseline's runs. The page decodes it with the browser's own
`DecompressionStream("gzip")`; outside a browser: `base64 -d | gunzip` (see
`decode_payload`). Nothing the dataset manifest calls a key survives into the file:
every such string is replaced before compressing, and the page is checked after.
"""

from __future__ import annotations

import base64
import gzip
import json
import math
from dataclasses import asdict
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import jinja2

from harness.outputs.report import distribution, prepare, series, server
from harness.outputs.report.inputs import ReportInputs, Side

PACKAGE = Path(__file__).parent
UPLOT_VERSION = "1.6.32"
PAYLOAD_FORMAT = "harness-report-data/1"
REDACTED = "[redacted]"


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(PACKAGE / "templates"),
                              autoescape=jinja2.select_autoescape(["html", "j2"]),
                              trim_blocks=True, lstrip_blocks=True,
                              undefined=jinja2.StrictUndefined)


@cache
def assets() -> dict[str, str]:
    """The inlined files: uPlot (script, style, licence) and the page's own script/style."""
    vendor = PACKAGE / "vendor" / "uplot"
    def read(path: Path) -> str:
        return path.read_text(encoding="utf-8")

    return {"uplot_js": read(vendor / "uPlot.iife.min.js"),
            "uplot_css": read(vendor / "uPlot.min.css"),
            "uplot_license": read(vendor / "LICENSE"),
            "page_js": read(PACKAGE / "templates" / "report.js"),
            "page_css": read(PACKAGE / "templates" / "report.css")}


def _is_chart(item: object) -> bool:
    return isinstance(item, dict) and {"series", "data", "x", "y"} <= item.keys()


def extract_charts(node: object, charts: dict[str, dict]) -> object:
    """Move every chart dict of the context into `charts` (id -> chart), leaving a stub
    {id, title, note} where it was: the data goes into the payload once, the page only
    holds a placeholder for it."""
    if _is_chart(node):
        cid = f"chart-{len(charts) + 1}"
        charts[cid] = node
        return {"id": cid, "title": node["title"], "note": node.get("note", "")}
    if isinstance(node, dict):
        return {k: extract_charts(v, charts) for k, v in node.items()}
    if isinstance(node, list):
        return [extract_charts(v, charts) for v in node]
    return node


def context(inputs: ReportInputs) -> dict:
    """Every section of the page, in page order, as plain data."""
    result = inputs.current.result
    return {
        "verdict": prepare.verdict(inputs),
        "facts": prepare.facts(inputs),
        "endpoints": prepare.endpoints(inputs),
        "latency": series.latency_over_time(inputs),
        "distribution": distribution.distributions(inputs),
        "throughput": series.throughput_over_time(inputs),
        "errors": prepare.errors(inputs),
        "caches": server.caches(inputs),
        "upstream": server.upstream(inputs),
        "database": server.database(inputs),
        "traces": server.traces(inputs),
        "correctness": prepare.correctness(inputs) | {"chart": server.freshness_chart(inputs)},
        "gate": prepare.gate_checks(inputs),
        "run": {"id": result.run.run_id, "scenario": result.run.scenario,
                "profile": result.run.profile, "baseline": inputs.baseline_name},
        "names": ({"baseline": "A", "current": "B", "prefix": "B "} if inputs.comparison
                  else {"baseline": "baseline", "current": "current", "prefix": ""}),
        "compare": inputs.comparison is not None,
    }


def _side_json(side: Side) -> str:
    """One side of the payload as JSON text: the record as pydantic writes it (NaN and
    infinity as null), the interval log as its text."""
    text = side.log_text if side.log_text is not None else series.log_text(side.log)
    return (f'{{"label":{json.dumps(side.label)},"record":{side.result.model_dump_json()},'
            f'"interval_log":{json.dumps(text)}}}')


def redact(text: str, secrets: frozenset[str]) -> str:
    """`text` with every secret replaced (longest first, so no key hides inside another)."""
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def encode_payload(inputs: ReportInputs, charts: dict[str, dict]) -> str:
    """The page's embedded data: JSON, secrets replaced, gzip, base64.

    `{"format", "charts": {id: chart}, "current": side, "baseline": [side...], "gate"}`,
    a side being `{"label", "record": result.json, "interval_log": windows.hlog text}`;
    a compare page adds `"current_rounds": [side...]` (B's runs after the first; A's are
    "baseline") and `"comparison"` (labels, paired or not, per-round changes)."""
    gate = inputs.gate.model_dump_json() if inputs.gate else "null"
    more = ""
    if inputs.current_rounds:
        more += f',"current_rounds":[{",".join(_side_json(s) for s in inputs.current_rounds)}]'
    if inputs.comparison is not None:
        more += f',"comparison":{json.dumps(json_safe(asdict(inputs.comparison)))}'
    text = (f'{{"format":"{PAYLOAD_FORMAT}",'
            f'"charts":{json.dumps(json_safe(charts), separators=(",", ":"), allow_nan=False)},'
            f'"current":{_side_json(inputs.current)},'
            f'"baseline":[{",".join(_side_json(s) for s in inputs.baseline)}],"gate":{gate}'
            f'{more}}}')
    text = redact(text, inputs.secrets)
    return base64.b64encode(gzip.compress(text.encode("utf-8"), compresslevel=6,
                                          mtime=0)).decode("ascii")


def decode_payload(data: str) -> dict:
    """The embedded data back as JSON (what the page's script does with
    `DecompressionStream`): for tests and for re-analysis outside a browser."""
    return json.loads(gzip.decompress(base64.b64decode(data)).decode("utf-8"))


def json_safe(node: object) -> object:
    """JSON cannot hold NaN or infinity: they become null (a gap in a chart)."""
    if isinstance(node, float):
        return node if math.isfinite(node) else None
    if isinstance(node, dict):
        return {k: json_safe(v) for k, v in node.items()}
    if isinstance(node, list):
        return [json_safe(v) for v in node]
    return node


def render_page(inputs: ReportInputs, template: str, sections: dict,
                generated_at: datetime | None = None) -> str:
    """A page of the report (`template`, with `sections` as its context): the charts
    moved into the embedded data, every secret replaced."""
    charts: dict[str, dict] = {}
    sections = extract_charts(sections, charts)
    when = (generated_at or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M:%S UTC")
    html = _environment().get_template(template).render(
        **sections, assets=assets(), payload=encode_payload(inputs, charts),
        payload_format=PAYLOAD_FORMAT, uplot_version=UPLOT_VERSION, generated_at=when)
    return redact(html, inputs.secrets)


def render_report(inputs: ReportInputs, generated_at: datetime | None = None) -> str:
    """The whole single-run page as one string (no file, no network: `write_report`
    writes it)."""
    return render_page(inputs, "report.html.j2", context(inputs), generated_at)
