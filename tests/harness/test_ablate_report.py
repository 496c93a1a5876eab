"""The ablation page (`report.html` of `harness ablate`) without a browser: every
configuration's row, its numbers read back out of the HTML and compared with the record
they came from, its verdict; first from a hand-made record with known figures (n/a
cells, a configuration never measured, caches), then over run directories built with
known truth, where each verdict must be the paired gate `harness ab` would give."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest

from harness.analysis import paired
from harness.analysis.checks import RunData
from harness.model.ablation import (
    AblationConfig,
    AblationEffect,
    AblationRecord,
    AblationRun,
)
from harness.model.gate import CheckResult, GateResult, Side, Tolerance
from harness.model.policy import Policy
from harness.outputs.ablation_markdown import ablation_markdown, change_parts, number
from harness.outputs.ablation_report import configurations, render_ablation
from harness.outputs.report.compare_page import render_compare
from harness.outputs.report.inputs import Comparison, ReportInputs, read_side
from harness.run import ablate
from harness.run import gate as run_gate
from harness.run.config import RunConfig
from tests.report.conftest import API_KEYS, COMPARE_SECTION_IDS, SLOWER, make_run, outline

OVERVIEW = "GET /api/v1/dashboard/overview"
AGENTS = "GET /api/v1/agents"


# ---------------------------------------------------------------- reading the page back


class Tables(HTMLParser):
    """Every `table.ablation` of a page: per table, the reference row's cells and per
    configuration row (`data-config`) its cells' text, class and data-sort."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[dict] = []
        self._depth = 0  # inside an ablation table
        self._row: dict | None = None
        self._cell: dict | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table" and "ablation" in (a.get("class") or "").split():
            self.tables.append({"class": a["class"], "heads": [], "reference": [],
                                "rows": {}})
            self._depth = 1
        elif not self._depth:
            return
        elif tag == "tr":
            self._row = {"config": a.get("data-config"), "reference": a.get("class") ==
                         "reference", "cells": []}
        elif tag in ("td", "th") and self._row is not None:
            self._cell = {"text": "", "class": a.get("class") or "",
                          "sort": a.get("data-sort"), "title": a.get("title") or "",
                          "tag": tag}

    def handle_endtag(self, tag: str) -> None:
        if not self._depth:
            return
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._cell["text"] = " ".join(self._cell["text"].split())
            self._row["cells"].append(self._cell)
            self._cell = None
        elif tag == "tr" and self._row is not None:
            t, row = self.tables[-1], self._row
            if row["reference"]:
                t["reference"] = row["cells"]
            elif row["config"]:
                t["rows"][row["config"]] = row["cells"]
            else:
                t["heads"] = [c["text"] for c in row["cells"]]
            self._row = None
        elif tag == "table":
            self._depth = 0

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell["text"] += data + " "


def tables(html: str) -> list[dict]:
    parser = Tables()
    parser.feed(html)
    parser.close()
    return parser.tables


def section(html: str, sid: str) -> str:
    start = html.index(f'<section id="{sid}"')
    return html[start:html.index("</section>", start)]


def expected_cell(e: AblationEffect) -> str:
    """What a cell must read, built from the record's effect alone."""
    if e.change is None:
        return "n/a"
    change, interval = change_parts(e)
    value = number(e.value, e.unit) if e.value is not None else "–"
    return " ".join(f"{change} {interval} {value}".split())


# ---------------------------------------------------------------- a hand-made record


def effect(config: str, metric: str, subject: str, change: float | None,
           interval: tuple[float, float] | None, value: float | None, reference: float,
           unit: str, why: str = "") -> AblationEffect:
    points = metric == "cache_hit_ratio"
    return AblationEffect(config=config, metric=metric, subject=subject, unit=unit,
                          scale="points" if points else "ratio", reference=reference,
                          value=value, change=change,
                          low=interval[0] if interval else None,
                          high=interval[1] if interval else None, rounds=2, why_not=why)


NO_LOOKUPS = "no lookups of this cache in one configuration (round 1, 2)"
EFFECTS = [  # (config, p95 overview, p95 agents, throughput, DB time, hit ratio response)
    ("kpi_view off", (1.02, (0.95, 1.10), 20.4), (0.99, (0.90, 1.08), 44.6),
     (1.0, (0.99, 1.01), 50.0), (1.9, (1.6, 2.2), 4.75), (-0.4, (-1.1, 0.3), 91.6)),
    ("response_cache off", (1.47, (1.31, 1.64), 29.4), (1.25, (1.12, 1.40), 56.3),
     (0.97, (0.95, 0.99), 48.5), (3.2, (2.9, 3.6), 8.0), None),
    ("all off", (3.05, (2.80, 3.33), 61.0), (2.61, (2.30, 2.95), 117.5),
     (0.71, (0.66, 0.77), 35.5), (7.4, (6.5, 8.4), 18.5), None),
]
REFERENCE = {("p95", OVERVIEW): 20.0, ("p95", AGENTS): 45.0,
             ("throughput", "all requests"): 50.0, ("db_time", "named queries"): 2.5,
             ("cache_hit_ratio", "response"): 92.0}


def record() -> AblationRecord:
    names = ["all on", "kpi_view off", "response_cache off", "pool off", "all off"]
    specs = ["profile:optimized", "toggles:kpi_view=false", "toggles:response_cache=false",
             "toggles:pool=false", "profile:naive"]
    effects = []
    for config, *figures in EFFECTS:
        for (metric, subject), unit, fig in zip(
                REFERENCE, ["ms", "ms", "req/s", "ms/request", "%"], figures, strict=True):
            if fig is None:
                effects.append(effect(config, metric, subject, None, None, None,
                                      REFERENCE[(metric, subject)], unit, NO_LOOKUPS))
            else:
                effects.append(effect(config, metric, subject, fig[0], fig[1], fig[2],
                                      REFERENCE[(metric, subject)], unit))
    return AblationRecord(
        command="harness ablate --toggles kpi_view,response_cache,pool --rounds 2",
        scenario="mixed", dataset="small", seed=42, users=50, duration_s=40, warmup_s=10,
        rounds=2, configurations=[AblationConfig(name=n, spec=s, off=[])
                                  for n, s in zip(names, specs, strict=True)],
        runs=[AblationRun(round=r, config=n, run_id=f"r{r}-{i}",
                          status="failed" if n == "pool off" else "complete")
              for r in (1, 2) for i, n in enumerate(names)],
        effects=effects, method="paired by round with all on over 2 round(s)",
        notes=["round 2, pool off (r2-3): failed"], created_at="2027-01-15T08:00:00+00:00",
        analysed_at="2027-01-15T09:00:00+00:00")


def check(subject: str, verdict: str, kind: str = "latency") -> CheckResult:
    name = f"p95 {subject}" if kind == "latency" else f"{kind} {subject}"
    return CheckResult(name=name, kind=kind, subject=subject, unit="ms", baseline=1.0,
                       current=1.0, change=1.0, interval=(0.9, 1.1), confidence=0.99,
                       tolerance=Tolerance(limit=0.15, text="+15%"), verdict=verdict,
                       reason=f"{verdict} for the test")


def gate(verdict: str, summary: str, checks: list[CheckResult]) -> GateResult:
    return GateResult(verdict=verdict, exit_code=1 if verdict == "regressed" else 0,
                      summary=summary, baseline=Side(label="A", run_ids=["a"]),
                      current=Side(label="B", run_ids=["b"]), method="paired", misrate=0.01,
                      block_s=5, resamples=100, seed=0, checks=checks)


GATES = {
    "kpi_view off": gate("pass", "pass: 3 checks within tolerance",
                         [check(OVERVIEW, "pass"), check(AGENTS, "inconclusive"),
                          check("response", "pass", "cache_hit_ratio")]),
    "response_cache off": gate("regressed", f"regressed: p95 {OVERVIEW} +47%",
                               [check(OVERVIEW, "regressed"), check(AGENTS, "regressed")]),
    "all off": "refusing to compare rounds that differ in dataset",
}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> ReportInputs:
    """Any pair of built runs for the sections after the table (they are the compare
    page's, tested there); the table comes from the record alone."""
    root = tmp_path_factory.mktemp("ablation-page")
    a = read_side(make_run(root / "a", seed=1, run_id="a1"), "A")
    b = read_side(make_run(root / "b", SLOWER, seed=2, run_id="b1"), "B")
    outcome = paired.compare_paired([(RunData(a.result, a.log), RunData(b.result, b.log))],
                                    run_gate.settings_from(_policy()))
    return ReportInputs(current=b, baseline=[a], gate=outcome.gate,
                        secrets=frozenset(API_KEYS), notes=["made for the test"],
                        comparison=Comparison("A: all on", "B: all off", "a1", "b1",
                                              paired=True, job="20270115T080000Z-ab12",
                                              rounds=[{"round": 1, "a": "a1", "b": "b1",
                                                       "changes": outcome.rounds[0]}]))


def _policy() -> Policy:
    """What the page judges with when the store has no policy.toml."""
    return Policy()


def test_the_table_data_has_every_configuration_but_the_reference():
    data = configurations(record(), GATES)
    main = data["main"]
    assert [r["name"] for r in main["rows"]] == ["kpi_view off", "response_cache off",
                                                 "pool off", "all off"]
    assert [h["head"] for h in main["heads"]] == [
        "p95 GET /agents", "p95 GET /dashboard/overview", "throughput", "DB time / request"]
    assert main["reference"] == ["45.0 ms", "20.0 ms", "50.0 req/s", "2.50 ms/request"]
    assert [h["head"] for h in data["caches"]["heads"]] == ["response"]
    assert data["caches"]["reference"] == ["92.0%"]
    verdicts = {r["name"]: r["verdict"] for r in main["rows"]}
    assert verdicts["kpi_view off"]["word"] == "pass"
    assert verdicts["kpi_view off"]["counts"] == "checks: 1 inconclusive, 2 pass"
    assert verdicts["response_cache off"]["state"] == "regressed"
    assert verdicts["all off"] == {"state": "none", "word": "not judged", "counts": "",
                                   "detail": GATES["all off"]}
    assert verdicts["pool off"]["word"] == "not judged"
    assert "never complete" in verdicts["pool off"]["detail"]
    assert any(m.startswith("response_cache off, cache hit ratio response: no lookups")
               for m in data["missing"])


def test_the_page_shows_every_configuration_with_the_records_numbers(inputs):
    rec = record()
    html = render_ablation(inputs, rec, GATES)
    main, caches = tables(html)
    assert "effects" in main["class"] and "hit-ratios" in caches["class"]
    assert set(main["rows"]) == {"kpi_view off", "response_cache off", "pool off", "all off"}
    assert main["heads"][:2] == ["configuration", "verdict paired gate against all on"]
    assert [c["text"] for c in main["reference"]][1:] == [
        "reference", "45.0 ms", "20.0 ms", "50.0 req/s", "2.50 ms/request"]
    by = {(e.config, e.metric, e.subject): e for e in rec.effects}
    columns = [("p95", AGENTS), ("p95", OVERVIEW), ("throughput", "all requests"),
               ("db_time", "named queries")]
    for config, cells in main["rows"].items():
        assert cells[0]["tag"] == "th" and cells[0]["text"].startswith(config)
        for (metric, subject), c in zip(columns, cells[2:], strict=True):
            e = by.get((config, metric, subject))
            if e is None:  # pool off: never measured
                assert c["text"] == "n/a" and "not measured" in c["title"]
                continue
            assert c["text"] == expected_cell(e), (config, metric)
            assert float(c["sort"]) == pytest.approx((e.change - 1) * 100)
    # e.g. the change, its interval and the value, exactly as the record has them
    assert main["rows"]["response_cache off"][3]["text"] == "+47% [+31, +64] 29.4 ms"
    assert main["rows"]["all off"][4]["text"] == "-29% [-34, -23] 35.5 req/s"
    for config, cells in caches["rows"].items():
        e = by.get((config, "cache_hit_ratio", "response"))
        assert cells[2]["text"] == (expected_cell(e) if e else "n/a")
    assert caches["rows"]["kpi_view off"][2]["text"] == "-0.4 pt [-1.1, +0.3] 91.6%"
    assert caches["rows"]["response_cache off"][2]["text"] == "n/a"
    assert NO_LOOKUPS in caches["rows"]["response_cache off"][2]["title"]


def test_each_row_carries_its_verdict_and_the_cells_their_checks_verdict(inputs):
    main, caches = tables(render_ablation(inputs, record(), GATES))
    verdict = {config: cells[1] for config, cells in main["rows"].items()}
    assert verdict["kpi_view off"]["text"] == "pass checks: 1 inconclusive, 2 pass"
    assert "state-pass" in verdict["kpi_view off"]["class"]
    assert verdict["response_cache off"]["text"].startswith("regressed checks: 2 regressed")
    assert verdict["response_cache off"]["title"] == f"regressed: p95 {OVERVIEW} +47%"
    assert verdict["all off"]["text"] == "not judged"
    assert verdict["all off"]["title"] == GATES["all off"]
    assert "state-none" in verdict["pool off"]["class"]
    kpi = main["rows"]["kpi_view off"]
    assert kpi[2]["class"] == "v-inconclusive" and kpi[3]["class"] == "v-pass"  # agents, overview
    assert kpi[4]["class"] == "" and kpi[5]["class"] == ""  # the gate has no such check
    assert main["rows"]["response_cache off"][3]["class"] == "v-regressed"
    assert caches["rows"]["kpi_view off"][2]["class"] == "v-pass"


def test_bold_where_the_interval_excludes_no_change_as_in_the_markdown(inputs):
    rec = record()
    page = section(render_ablation(inputs, rec, GATES), "configurations")
    assert "<strong>+47% [+31, +64]</strong>" in page  # clear
    assert "<strong>+2.0% [-5.0, +10]</strong>" not in page and "+2.0% [-5.0, +10]" in page
    md = ablation_markdown(rec)
    assert "**+47% [+31, +64]**" in md and "| +2.0% [-5.0, +10] |" in md


def test_the_table_comes_first_then_the_compare_pages_sections(inputs):
    html = render_ablation(inputs, record(), GATES)
    page = outline(html)
    assert page.sections == ["configurations", *COMPARE_SECTION_IDS]
    assert page.external == []  # self-contained: nothing to fetch
    assert '<li><a href="#configurations">Every configuration</a></li>' in html
    assert "Ablation job <code>20270115T080000Z-ab12</code>" in html
    assert "<title>Ablation 20270115T080000Z-ab12 · every configuration" in html
    conf = section(html, "configurations")
    assert "<code>harness ablate --toggles kpi_view,response_cache,pool --rounds 2</code>" in conf
    assert "round 2, pool off (r2-3): failed" in conf
    assert "Method: paired by round with all on over 2 round(s)." in conf
    for key in API_KEYS:
        assert key not in html


def test_the_compare_page_itself_is_unchanged_by_the_blocks(inputs):
    html = render_compare(inputs)
    assert outline(html).sections == COMPARE_SECTION_IDS
    assert "configurations" not in html and "Ablation" not in html
    assert "A/B job <code>20270115T080000Z-ab12</code>: B against A</h1>" in html
    assert "<nav><ol>\n    <li><a href=\"#verdict\">Verdict</a></li>" in html


def test_a_record_with_no_effects_yet_says_so(inputs):
    rec = record()
    rec.effects = []
    conf = section(render_ablation(inputs, rec, {}), "configurations")
    assert "no configuration was measured against the reference in the same round yet" in conf
    assert "<table" not in conf


# ---------------------------------------------------------------- over built runs


def test_over_built_runs_the_numbers_are_ablate_json_and_the_verdicts_harness_ab_s(
        tmp_path: Path):
    from harness.outputs.ablation_report import write_ablation_report

    out = tmp_path / "reports"
    configs = ablate.configurations(["response_cache", "kpi_view"])
    job, rec = ablate.new_job(out, RunConfig(), configs, 2, "harness ablate --rounds 2")
    slower = {"all on": None, "kpi_view off": None, "response_cache off": SLOWER,
              "all off": SLOWER}
    for n, r in enumerate(rec.runs):
        r.run_id = f"run{n}"
        make_run(out / "runs" / r.run_id, slower[r.config], seed=10 + n, run_id=r.run_id)
        r.status = "complete"
    ablate.analyse(rec, out / "runs", job, resamples=200)
    saved = AblationRecord.model_validate_json((job / "ablate.json").read_text())
    html = write_ablation_report(saved, out / "runs", job, tmp_path / "store").read_text()
    main = tables(html)[0]
    assert set(main["rows"]) == {"kpi_view off", "response_cache off", "all off"}
    by = {(e.config, e.metric, e.subject): e for e in saved.effects}
    heads = main["heads"][2:]
    assert heads[0].startswith("p95 GET /agents")
    for config, cells in main["rows"].items():
        p95 = [e for e in saved.effects if e.config == config and e.metric == "p95"]
        for e, c in zip(sorted(p95, key=lambda e: e.subject), cells[2:], strict=False):
            assert c["text"] == expected_cell(by[(config, "p95", e.subject)])
    # each verdict is the paired gate harness ab gives the pair over the same rounds
    settings = run_gate.settings_from(_policy())
    for config, cells in main["rows"].items():
        pairs = []
        for n in (1, 2):
            ids = {r.config: r.run_id for r in saved.runs if r.round == n}
            (ra, la), = run_gate.read_runs([out / "runs" / ids["all on"]])
            (rb, lb), = run_gate.read_runs([out / "runs" / ids[config]])
            pairs.append((RunData(ra, la), RunData(rb, lb)))
        expected = paired.compare_paired(pairs, settings, allow_mismatch=True).gate
        word = {"cannot_judge": "cannot judge"}.get(expected.verdict, expected.verdict)
        assert cells[1]["text"].split(" checks:")[0] == word, config
        assert cells[1]["title"] == expected.summary
    assert "regressed" in main["rows"]["all off"][1]["text"]
    assert main["rows"]["kpi_view off"][1]["text"].split(" checks:")[0] != "regressed"
    # the pair in full below: all off against all on, every run of both sides
    assert outline(html).sections == ["configurations", *COMPARE_SECTION_IDS]
    assert "B: all off (profile:naive)" in html
