"""The gate's outputs from hand-built records: junit.xml, summary.md, the terminal, the schema.

The gates are built by hand (not by the comparison) so every output is tested
on known figures: a pass, a regression with a hard failure, an inconclusive
gate with advice, one that cannot be judged, and names holding `& < > " |`.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
from junitparser import Error, Failure, JUnitXml, Skipped
from markdown_it import MarkdownIt
from rich.console import Console

import harness.model.gate as gates
from harness.model.gate import CheckResult, GateResult, HardFailure, Side, Tolerance
from harness.outputs import gate_markdown as gm
from harness.outputs.gate_markdown import gate_markdown
from harness.outputs.gate_table import checks_table, gate_table
from harness.outputs.junit import junit_xml

SCHEMA_PATH = Path(gates.__file__).with_name("gate.schema.json")
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
REGENERATE = ('python -c "import json,harness.model.gate as g; '
              'print(json.dumps(g.json_schema(), indent=2))" > harness/model/gate.schema.json')

OVERVIEW = "GET /api/v1/dashboard/overview"
AGENT = "GET /api/v1/agents/{agent_id}"
ODD = 'GET /api/v1/search?q=a&b=<c>&d="e"|f'

P95 = Tolerance(limit=0.15, text="+15%")
P99 = Tolerance(limit=0.25, text="+25%")
ERRORS = Tolerance(limit=0.5, relative=False, text="+0.5pt")
HITS = Tolerance(limit=5.0, relative=False, higher_is_worse=False)  # no text: from the limit


# ---------------------------------------------------------------- builders


def latency(p: str, endpoint: str, base: float, cur: float, lo: float, hi: float,
            verdict: str, tol: Tolerance = P95, **kw) -> CheckResult:
    change = cur / base
    shown = f"{(change - 1) * 100:+.0f}% [{(lo - 1) * 100:+.0f}%, {(hi - 1) * 100:+.0f}%]"
    return CheckResult(name=f"{p} {endpoint}", kind="latency", subject=endpoint, unit="ms",
                       baseline=base, current=cur, change=change, interval=(lo, hi),
                       confidence=0.9994, tolerance=tol, verdict=verdict, p_value=0.0003,
                       reason=kw.pop("reason", f"{shown}: {verdict} ({tol.text})"), **kw)


def rate(kind: str, subject: str, base: float, cur: float, lo: float, hi: float,
         verdict: str, tol: Tolerance, **kw) -> CheckResult:
    return CheckResult(name=f"{kind} {subject}", kind=kind, subject=subject, unit="%",
                       baseline=base, current=cur, change=cur - base, interval=(lo, hi),
                       confidence=0.999, tolerance=tol, verdict=verdict,
                       reason=kw.pop("reason", f"{cur - base:+.2f}pt: {verdict}"), **kw)


def sides(**current) -> dict:
    return {
        "baseline": Side(label="baseline optimized", run_ids=["20270101T000000Z-base-1"],
                         git_commit="0123456789abcdef0123", profile="optimized"),
        "current": Side(label="current", run_ids=["20270102T000000Z-cur-1"],
                        git_commit="fedcba9876543210fedc",
                        profile=current.pop("profile", "naive"),
                        toggles=current.pop("toggles", {"response_cache": False}))}


COMMON = {"method": "block bootstrap over 5 s blocks of windows", "misrate": 0.01,
          "block_s": 5, "resamples": 2000, "seed": 0}


def pass_gate() -> GateResult:
    return GateResult(
        verdict="pass", exit_code=0, summary="pass: 4 checks within tolerance",
        **sides(profile="optimized", toggles={}), **COMMON,
        checks=[latency("p95", OVERVIEW, 20.0, 20.4, 0.97, 1.07, "pass"),
                latency("p99", OVERVIEW, 40.0, 41.0, 0.95, 1.12, "pass", P99, advisory=True),
                rate("error_rate", OVERVIEW, 0.10, 0.12, -0.1, 0.15, "pass", ERRORS),
                rate("cache_hit_ratio", "overview", 80.0, 92.5, 10.1, 14.9, "improved", HITS)])


def regressed_gate() -> GateResult:
    return GateResult(
        verdict="regressed", exit_code=1,
        summary="regressed: 1 tenant leak(s) in 20270102T000000Z-cur-1; p95 GET "
                "/api/v1/dashboard/overview +42% [+31%, +55%]",
        **sides(), **COMMON,
        checks=[latency("p95", AGENT, 30.0, 36.0, 1.16, 1.25, "regressed"),
                latency("p95", OVERVIEW, 100.0, 142.0, 1.31, 1.55, "regressed"),
                latency("p99", OVERVIEW, 200.0, 300.0, 1.30, 1.70, "regressed", P99,
                        advisory=True),
                latency("p50", OVERVIEW, 12.345, 12.0, 0.95, 1.01, "pass"),
                rate("error_rate", OVERVIEW, 0.10, 0.12, -0.1, 0.15, "pass", ERRORS)],
        hard_failures=[HardFailure(kind="tenant_leak",
                                   detail="1 tenant leak(s) in 20270102T000000Z-cur-1")])


def inconclusive_gate(fails: bool = False) -> GateResult:
    return GateResult(
        verdict="inconclusive", exit_code=1 if fails else 0,
        summary=f"inconclusive: 1 check(s) undecided, e.g. p95 {OVERVIEW}",
        **sides(), **COMMON, inconclusive_fails=fails,
        checks=[latency("p95", OVERVIEW, 100.0, 112.0, 1.02, 1.23, "inconclusive",
                        reason="+12% [+2%, +23%]: the interval reaches past the tolerance",
                        advice="run about 2.3x longer"),
                latency("p99", OVERVIEW, 200.0, 230.0, 0.9, 1.5, "inconclusive", P99,
                        advisory=True, reason="the interval reaches past the tolerance",
                        advice="run about 4.0x longer"),
                latency("p50", OVERVIEW, 50.0, 50.5, 0.98, 1.03, "pass")])


def cannot_judge_gate() -> GateResult:
    return GateResult(
        verdict="cannot_judge", exit_code=3,
        summary="load generator saturated in 20270102T000000Z-cur-1", **sides(), **COMMON,
        checks=[latency("p95", OVERVIEW, 100.0, 101.0, 0.97, 1.05, "pass")],
        cannot_judge=["load generator saturated in 20270102T000000Z-cur-1"])


def odd_gate() -> GateResult:
    return GateResult(
        verdict="regressed", exit_code=1, summary="regressed", **sides(), **COMMON,
        mismatches=["users: 50 vs 100", "machine: 4 vs 8 CPUs <x86 & arm>"],
        allowed_mismatch=True,
        checks=[latency("p95", ODD, 10.0, 20.0, 1.8, 2.2, "regressed",
                        reason='+100% for q=a&b=<c> "quoted"\nsecond line'),
                latency("p50", ODD, 5.0, 5.1, 0.95, 1.1, "pass")],
        hard_failures=[HardFailure(kind="error_rate", detail="error rate 7% <limit 5%> & more"),
                       HardFailure(kind="error_rate", detail="again\x01\nin run 2")])


GATES = {"pass": pass_gate, "regressed": regressed_gate, "inconclusive": inconclusive_gate,
         "cannot_judge": cannot_judge_gate, "odd": odd_gate}


# ---------------------------------------------------------------- JUnit


def parse(gate: GateResult):
    xml = junit_xml(gate)
    suites = list(JUnitXml.fromstring(xml))
    assert len(suites) == 1
    suite = suites[0]
    return xml, suite, {case.name: case for case in suite}


def outcome(case):
    results = case.result
    assert len(results) <= 1
    return results[0] if results else None


def test_junit_of_a_regression_with_a_hard_failure():
    gate = regressed_gate()
    xml, suite, cases = parse(gate)
    assert suite.name == "performance gate"
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (6, 3, 0, 0)
    for check in gate.checks:
        case = cases[check.name]
        assert case.classname == "latency" if check.kind == "latency" else check.kind
        result = outcome(case)
        if check.verdict == "regressed" and not check.advisory:
            assert isinstance(result, Failure) and result.type == "regressed"
            assert result.message == check.reason
            body = result.text
            for figure in (gm.fmt_value(check.baseline, "ms"), gm.fmt_value(check.current, "ms"),
                           gm.fmt_change(check), gm.fmt_interval(check), "+15%"):
                assert figure in body
        else:
            assert result is None and case.is_passed
            assert check.name in case.system_out
    overview = cases[f"p95 {OVERVIEW}"]
    assert "+42% [+31%, +55%] at 99.94% confidence" in outcome(overview).text
    assert "baseline:  100 ms" in outcome(overview).text
    advisory = cases[f"p99 {OVERVIEW}"]
    assert advisory.system_out.startswith("advisory regressed: ")
    hard = cases["tenant_leak"]
    assert hard.classname == "hard"
    assert isinstance(outcome(hard), Failure)
    assert outcome(hard).message == "hard failure tenant_leak: 1 tenant leak(s) in " \
                                    "20270102T000000Z-cur-1"
    props = {p.name: p.value for p in suite.properties()}
    assert props["baseline.run_ids"] == "20270101T000000Z-base-1"
    assert props["current.run_ids"] == "20270102T000000Z-cur-1"
    assert props["baseline.git_commit"] == "0123456789abcdef0123"
    assert props["current.git_commit"] == "fedcba9876543210fedc"
    assert props["current.toggles"] == "response_cache=false"
    assert props["method"] == COMMON["method"] and props["misrate"] == "0.01"
    assert props["gate.verdict"] == "regressed" and props["gate.exit_code"] == "1"
    assert_junit_shape(xml)


def test_junit_of_a_pass_has_no_failure():
    xml, suite, cases = parse(pass_gate())
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (4, 0, 0, 0)
    assert all(case.is_passed for case in cases.values())
    assert "improved" in cases["cache_hit_ratio overview"].system_out
    assert cases["cache_hit_ratio overview"].classname == "cache_hit_ratio"
    assert_junit_shape(xml)


@pytest.mark.parametrize("fails", [False, True])
def test_junit_of_inconclusive_checks_skips_or_fails_by_policy(fails):
    gate = inconclusive_gate(fails)
    xml, suite, cases = parse(gate)
    main = outcome(cases[f"p95 {OVERVIEW}"])
    assert isinstance(main, Failure if fails else Skipped)
    assert main.message == ("inconclusive: +12% [+2%, +23%]: the interval reaches past the "
                            "tolerance; would decide it: run about 2.3x longer")
    advisory = cases[f"p99 {OVERVIEW}"]  # advisory: never failing, never skipped
    assert outcome(advisory) is None and "advisory inconclusive" in advisory.system_out
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == \
        (3, 1 if fails else 0, 0, 0 if fails else 1)
    assert_junit_shape(xml)


def test_junit_of_a_gate_that_cannot_be_judged_is_an_error():
    xml, suite, cases = parse(cannot_judge_gate())
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (2, 0, 1, 0)
    error = outcome(cases["cannot judge"])
    assert isinstance(error, Error) and error.type == "cannot_judge"
    assert error.message == "cannot judge: load generator saturated in 20270102T000000Z-cur-1"
    assert cases["cannot judge"].classname == "gate"
    assert_junit_shape(xml)


def test_junit_escapes_names_and_reasons():
    gate = odd_gate()
    xml, suite, cases = parse(gate)
    name = f"p95 {ODD}"
    assert name in cases  # round-trips exactly through the escaping
    assert "&amp;b=&lt;c&gt;" in xml and "<c>" not in xml
    failure = outcome(cases[name])
    assert failure.message == '+100% for q=a&b=<c> "quoted" second line'  # one line
    assert 'q=a&b=<c> "quoted"' in failure.text
    assert {c.name for c in cases.values() if c.classname == "hard"} == \
        {"error_rate", "error_rate #2"}
    assert outcome(cases["error_rate #2"]).message == "hard failure error_rate: again in run 2"
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (4, 3, 0, 0)
    props = {p.name: p.value for p in suite.properties()}
    assert props["mismatches"] == "users: 50 vs 100; machine: 4 vs 8 CPUs <x86 & arm>"
    assert props["allowed_mismatch"] == "true"
    suite_out = ET.fromstring(xml.encode()).find("testsuite/system-out").text
    assert "Compared despite these differences" in suite_out
    assert "machine: 4 vs 8 CPUs <x86 & arm>" in suite_out
    assert_junit_shape(xml)


# The common JUnit XSD (Jenkins xUnit junit-10.xsd; Ant's and Surefire's reports fit it),
# as element -> (required attributes, allowed attributes, allowed children); counts integer.
_SHAPE = {
    "testsuites": (set(), {"name", "time", "tests", "failures", "errors", "skipped"},
                   {"testsuite"}),
    "testsuite": ({"name", "tests", "failures", "errors"},
                  {"name", "tests", "failures", "errors", "skipped", "group", "time",
                   "timestamp", "hostname", "id", "package", "file", "log", "url"},
                  {"testsuite", "properties", "testcase", "system-out", "system-err"}),
    "properties": (set(), set(), {"property"}),
    "property": ({"name", "value"}, {"name", "value"}, set()),
    "testcase": ({"name"}, {"name", "time", "classname", "group"},
                 {"skipped", "error", "failure", "system-out", "system-err"}),
    "failure": (set(), {"type", "message"}, set()),
    "error": (set(), {"type", "message"}, set()),
    "skipped": (set(), {"type", "message"}, set()),
    "system-out": (set(), set(), set()),
    "system-err": (set(), set(), set()),
}
_COUNTS = ("tests", "failures", "errors", "skipped")
_SUREFIRE_TIME = re.compile(r"(([0-9]{0,3},)*[0-9]{3}|[0-9]{0,3})*(\.[0-9]*)?")


def assert_junit_shape(xml: str) -> None:
    assert xml.startswith('<?xml version="1.0" encoding="UTF-8"?>\n')
    root = ET.fromstring(xml.encode())
    assert root.tag == "testsuites"
    for el in root.iter():
        required, allowed, children = _SHAPE[el.tag]
        assert required <= set(el.attrib) <= allowed, (el.tag, el.attrib)
        assert {c.tag for c in el} <= children, el.tag
        if "time" in el.attrib:
            assert _SUREFIRE_TIME.fullmatch(el.get("time")), el.get("time")
    for suite in [root, *root.iter("testsuite")]:
        for key in _COUNTS:
            assert re.fullmatch(r"[0-9]+", suite.get(key, "0")), (key, suite.get(key))
        cases = list(suite.iter("testcase"))
        assert int(suite.get("tests")) == len(cases)
        for key, tag in (("failures", "failure"), ("errors", "error"), ("skipped", "skipped")):
            assert int(suite.get(key)) == sum(c.find(tag) is not None for c in cases)
    for suite in root.iter("testsuite"):  # Ant's order: properties first
        tags = [c.tag for c in suite]
        assert "properties" not in tags or tags.index("properties") == 0
    for case in root.iter("testcase"):  # at most one outcome per case
        assert sum(case.find(t) is not None for t in ("failure", "error", "skipped")) <= 1


# ---------------------------------------------------------------- Markdown


def md_rows(text: str) -> dict[str, list[str]]:
    """The check table as rendered by a CommonMark + GFM-tables parser: name -> cells."""
    html = MarkdownIt("commonmark").enable("table").render(text)
    tables = re.findall(r"<table>(.*?)</table>", html, re.DOTALL)
    rows = {}
    for row in re.findall(r"<tr>(.*?)</tr>", tables[-1], re.DOTALL)[1:]:
        cells = [re.sub(r"<[^>]+>", "", c).strip()
                 for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.DOTALL)]
        assert len(cells) == 7, cells
        rows[_unescape(cells[0])] = [_unescape(c) for c in cells[1:]]
    return rows


def md_plain(text: str) -> str:
    """What a reader sees of some Markdown: rendered, tags dropped."""
    html = MarkdownIt("commonmark").enable("table").render(text)
    return _unescape(re.sub(r"<[^>]+>", "", html))


def _unescape(html: str) -> str:
    return (html.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"')
            .replace("&amp;", "&"))


def test_markdown_of_a_regression_puts_the_verdict_first():
    gate = regressed_gate()
    text = gate_markdown(gate)
    lines = text.splitlines()
    assert lines[0] == ("**REGRESSED**: hard failure `tenant_leak`: 1 tenant leak(s) in "
                        "20270102T000000Z-cur-1; `p95 GET /api/v1/dashboard/overview` +42% "
                        "[+31%, +55%] (tolerance +15%) (+1 more regressed)")
    assert lines[2] == "Exit code 1: the gate fails CI."
    # hard failures before the regressions, the worst regression first
    assert text.index("### Hard failures") < text.index("### Regressions (2)")
    regressions = [ln for ln in lines if ln.startswith("- `p95")]
    assert regressions[0].startswith(f"- `p95 {OVERVIEW}`: 100 ms -> 142 ms, +42%")
    assert regressions[1].startswith(f"- `p95 {AGENT}`: 30.0 ms -> 36.0 ms, +20%")
    assert "### Advisory regressions (1, not failing the gate)" in text
    assert "| runs | `20270101T000000Z-base-1` | `20270102T000000Z-cur-1` |" in text
    assert "| commit | `0123456789ab` | `fedcba987654` |" in text
    assert "| profile | optimized | naive |" in text
    assert "| toggles | profile defaults | `response_cache=false` |" in text
    rows = md_rows(text)
    assert list(rows) == [c.name for c in gate.checks]
    assert rows[f"p95 {OVERVIEW}"] == ["100 ms", "142 ms", "+42%", "[+31%, +55%]", "+15%",
                                       "regressed"]
    assert rows[f"p99 {OVERVIEW}"][-1] == "regressed (advisory)"
    assert rows[f"p50 {OVERVIEW}"][:3] == ["12.3 ms", "12.0 ms", "-2.8%"]
    assert rows[f"error_rate {OVERVIEW}"] == ["0.10%", "0.12%", "+0.02 pt", "[-0.10 pt, +0.15 pt]",
                                             "+0.5pt", "pass"]
    assert "**regressed**" in text and "**regressed (advisory)**" not in text


def test_markdown_of_a_pass():
    text = gate_markdown(pass_gate())
    assert text.splitlines()[0] == "**PASS**: 4 checks within tolerance, 1 improved"
    assert "Exit code 0" in text and "### Regressions" not in text
    rows = md_rows(text)
    assert rows["cache_hit_ratio overview"] == ["80.00%", "92.50%", "+12.5 pt",
                                                "[+10.1 pt, +14.9 pt]", "-5.0 pt", "improved"]
    assert rows[f"p99 {OVERVIEW}"][-1] == "pass (advisory)"


@pytest.mark.parametrize("fails", [False, True])
def test_markdown_of_an_inconclusive_gate_gives_the_advice(fails):
    text = gate_markdown(inconclusive_gate(fails))
    first = text.splitlines()[0]
    assert first.startswith(f"**INCONCLUSIVE**: 1 of 3 checks undecided, e.g. `p95 {OVERVIEW}` "
                            "+12% [+2.0%, +23%] (tolerance +15%); ")
    assert first.endswith("fails CI (policy: inconclusive fails)" if fails
                          else "does not fail CI")
    section = md_plain(text[text.index("### Inconclusive (2)"):])
    assert (f"p95 {OVERVIEW}: +12% [+2%, +23%]: the interval reaches past the tolerance; "
            "would decide it: run about 2.3x longer") in section
    assert "run about 4.0x longer" in section
    assert ("inconclusive checks fail CI" if fails else "inconclusive checks do not fail CI") \
        in text


def test_markdown_of_a_gate_that_cannot_be_judged():
    text = gate_markdown(cannot_judge_gate())
    assert text.splitlines()[0] == \
        "**CANNOT JUDGE**: load generator saturated in 20270102T000000Z-cur-1"
    assert "Exit code 3" in text and "### Cannot be judged" in text


def test_markdown_escapes_names_and_free_text():
    gate = odd_gate()
    text = gate_markdown(gate)
    html = MarkdownIt("commonmark").enable("table").render(text)
    assert "<c>" not in html and "<limit" not in html and "<x86" not in html
    assert "error rate 7% &lt;limit 5%&gt; &amp; more" in html
    rows = md_rows(text)  # the pipe in the name does not split the row
    assert list(rows) == [f"p95 {ODD}", f"p50 {ODD}"]
    assert rows[f"p95 {ODD}"][2:] == ["+100%", "[+80%, +120%]", "+15%", "regressed"]
    assert "### Mismatches (allowed)" in text
    assert "- machine: 4 vs 8 CPUs \\<x86 \\& arm\\>" in text


def test_every_item_is_one_line_without_control_characters():
    text = gate_markdown(odd_gate())
    assert "- **`error_rate`**: again in run 2" in text.splitlines()
    assert "\x01" not in text and "\x01" not in render(gate_table(odd_gate()))


def test_number_formatting_for_people():
    c = latency("p95", OVERVIEW, 12.345, 12.0, 0.95, 1.01, "pass")
    assert gm.fmt_value(12.345, "ms") == "12.3 ms" and gm.fmt_value(None, "ms") == "–"
    assert gm.fmt_change_value(1.42, c) == "+42%" and gm.fmt_change_value(0.965, c) == "-3.5%"
    assert gm.fmt_change_value(1.0, c) == "+0.0%" and gm.fmt_change_value(0.99999, c) == "+0.0%"
    assert gm.fmt_change_value(float("inf"), c) == "+inf%"
    assert gm.fmt_tolerance(Tolerance(limit=0.15), "ms") == "+15%"
    assert gm.fmt_tolerance(Tolerance(limit=0.05, higher_is_worse=False), "ratio") == "-5.0%"
    assert gm.fmt_tolerance(Tolerance(limit=20, relative=False), "ms") == "+20.0 ms"
    assert gm.fmt_tolerance(Tolerance(limit=0.05, relative=False, higher_is_worse=False),
                            "share") == "-5.0 pt"
    share = c.model_copy(update={"unit": "share", "tolerance": Tolerance(limit=0.05,
                                                                        relative=False)})
    assert gm.fmt_value(0.0123, "share") == "1.23%"
    assert gm.fmt_change_value(-0.031, share) == "-3.1 pt"
    assert gm.fmt_value(1.05, "ratio") == "1.050"
    assert gm.fmt_confidence(0.9994) == "99.94%" and gm.fmt_confidence(0.99) == "99%"


# ---------------------------------------------------------------- the terminal


def render(renderable) -> str:
    console = Console(record=True, width=200)
    console.print(renderable)
    return console.export_text()


def row_of(out: str, first: str) -> list[str]:
    line = next(ln for ln in out.splitlines()
                if ln.startswith("│") and ln.strip("│ ").startswith(first))
    return [cell.strip() for cell in line.strip().strip("│").split("│")]


@pytest.mark.parametrize("which", list(GATES))
def test_the_rich_table_renders_every_gate(which):
    gate = GATES[which]()
    out = render(gate_table(gate))
    assert out.splitlines()[0].startswith(gm.STATUS[gate.verdict] + ": ")
    for c in gate.checks:
        assert c.name in out
    for h in gate.hard_failures:
        assert h.kind in out


def test_the_rich_table_shows_each_checks_figures_and_colours_verdicts():
    gate = regressed_gate()
    out = render(gate_table(gate))
    assert out.splitlines()[0] == gm.headline(gate)
    assert row_of(out, f"p95 {OVERVIEW}") == [f"p95 {OVERVIEW}", "100 ms", "142 ms", "+42%",
                                             "[+31%, +55%]", "+15%", "regressed"]
    assert row_of(out, f"p99 {OVERVIEW}")[-1] == "regressed (advisory)"
    assert "tenant_leak: 1 tenant leak(s) in 20270102T000000Z-cur-1" in out
    assert "response_cache=false" in out and "0123456789ab" in out
    table = checks_table(gate)
    verdicts = {str(t): t.style for t in table.columns[-1].cells}
    assert verdicts["regressed"] == "bold red" and verdicts["pass"] == "green"
    assert verdicts["regressed (advisory)"] == "dim red"


def test_the_rich_table_takes_names_literally():
    gate = odd_gate()
    bracket = gate.model_copy(update={"checks": [gate.checks[0].model_copy(
        update={"name": "p95 GET /x/[bold]y[/bold]"})]})
    out = render(gate_table(bracket))
    assert "p95 GET /x/[bold]y[/bold]" in out
    assert "machine: 4 vs 8 CPUs <x86 & arm>" in render(gate_table(gate))


# ---------------------------------------------------------------- the schema


def test_committed_gate_schema_is_generated_from_the_models():
    committed = json.loads(SCHEMA_PATH.read_text())
    assert committed == gates.json_schema(), f"regenerate: {REGENERATE}"


@pytest.mark.parametrize("which", list(GATES))
def test_every_built_gate_validates_against_the_committed_schema(which):
    raw = json.loads(GATES[which]().model_dump_json())
    jsonschema.validate(raw, json.loads(SCHEMA_PATH.read_text()))


def test_the_schema_refuses_what_the_model_refuses():
    schema = json.loads(SCHEMA_PATH.read_text())
    raw = json.loads(regressed_gate().model_dump_json())
    for broken in ({**raw, "verdict": "maybe"}, {**raw, "exit_code": 2},
                   {**raw, "surprise": 1},
                   {**raw, "checks": [{**raw["checks"][0], "interval": [1.0]}]}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, schema)


def test_the_committed_fixture_is_a_valid_gate_json():
    path = FIXTURES / "gate_regressed.json"
    raw = json.loads(path.read_text())
    jsonschema.validate(raw, json.loads(SCHEMA_PATH.read_text()))
    loaded = GateResult.model_validate_json(path.read_bytes())
    assert loaded == regressed_gate(), (
        "regenerate: python -c \"from tests.harness.test_gate_outputs import regressed_gate; "
        "print(regressed_gate().model_dump_json(indent=2))\" > tests/fixtures/gate_regressed.json")
    assert gate_markdown(loaded).startswith("**REGRESSED**: ")


def test_many_regressions_are_listed_worst_first_then_counted():
    checks = [latency("p95", f"GET /api/v1/e{i}", 10.0, 10.0 * (1.2 + i / 100), 1.16 + i / 100,
                      1.3 + i / 100, "regressed") for i in range(13)]
    gate = regressed_gate().model_copy(update={"checks": checks, "hard_failures": []})
    text = gate_markdown(gate)
    assert text.splitlines()[0].startswith("**REGRESSED**: `p95 GET /api/v1/e12` +32% ")
    assert text.splitlines()[0].endswith("(+12 more regressed)")
    listed = [ln for ln in text.splitlines() if ln.startswith("- `p95 GET /api/v1/e")]
    assert len(listed) == gm.MAX_LISTED and listed[0].startswith("- `p95 GET /api/v1/e12`")
    assert "- ... and 3 more (see the table)" in text
    assert len(md_rows(text)) == 13
    assert "... and 3 more (see the table)" in render(gate_table(gate))


def test_a_gate_without_checks_and_a_rounds_method():
    gate = cannot_judge_gate().model_copy(update={
        "checks": [], "method": "Hodges-Lehmann over rounds",
        "baseline": Side(label="A", run_ids=[f"a{i}" for i in range(6)])})
    text = gate_markdown(gate)
    assert "### Checks" not in text
    assert "Method: Hodges-Lehmann over rounds; misrate 0.01" in text
    assert "`a0`, `a1`, `a2`, `... 3 more (6 runs)`" in text
    assert "| commit | `unknown` |" in text
    _, suite, cases = parse(gate)
    assert (suite.tests, suite.errors) == (1, 1) and list(cases) == ["cannot judge"]
    assert "Hodges-Lehmann over rounds" in render(gate_table(gate))


def test_a_check_without_an_estimate():
    gate = inconclusive_gate().model_copy(update={"checks": [CheckResult(
        name=f"p95 {OVERVIEW}", kind="latency", subject=OVERVIEW, unit="ms", baseline=None,
        current=None, change=None, interval=None, confidence=None, tolerance=P95,
        verdict="inconclusive", reason="a run has no interval log (schema_version 1)",
        advice="run 5+ rounds")]})
    assert gate_markdown(gate).splitlines()[0] == (
        f"**INCONCLUSIVE**: 1 of 1 checks undecided, e.g. `p95 {OVERVIEW}` no estimate "
        "(tolerance +15%); does not fail CI")
    assert md_rows(gate_markdown(gate))[f"p95 {OVERVIEW}"] == ["–"] * 4 + ["+15%", "inconclusive"]
    _, _, cases = parse(gate)
    assert outcome(cases[f"p95 {OVERVIEW}"]).message == (
        "inconclusive: a run has no interval log (schema_version 1); would decide it: "
        "run 5+ rounds")
    assert row_of(render(gate_table(gate)), f"p95 {OVERVIEW}")[1:] == \
        ["–"] * 4 + ["+15%", "inconclusive"]
