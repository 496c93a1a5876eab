"""`junit.xml` of a gate: one test case per check, for any JUnit consumer.

GitHub (test-reporter actions), GitLab's test reports and Jenkins read it. The
shape is the common JUnit XSD's (Jenkins xUnit `junit-10.xsd`, which Ant's and
Surefire's reports satisfy): a `<testsuites>` root holding one `<testsuite
name="performance gate">` whose `tests`, `failures`, `errors` and `skipped` are
integers that count its test cases, `<properties>` first, then the cases.

* a check: `classname` = its kind, `name` = its name; `regressed` is a
  `<failure message="reason">` with the figures (baseline, current, change and
  interval, tolerance) in its body; `inconclusive` a `<skipped>` (a
  `<failure>` when the policy makes inconclusive fail CI); `pass`, `improved`
  and advisory checks (never failing) a plain case with the figures in
  `<system-out>`;
* each hard failure an extra failing case (`classname="hard"`);
* a gate that cannot be judged an `<error>` case (`classname="gate"`);
* properties: both sides' run ids, commits, profiles, toggles; the method,
  misrate, block length, resamples, seed, verdict and exit code.

Built with `xml.etree.ElementTree`, so names holding `{ } / & < > "` are
escaped right; characters XML 1.0 cannot carry (control characters) are
dropped.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from harness.model.gate import CheckResult, GateResult, HardFailure, Side
from harness.outputs.gate_markdown import (
    exit_sentence,
    fmt_change,
    fmt_commit,
    fmt_confidence,
    fmt_interval,
    fmt_toggles,
    fmt_tolerance,
    fmt_value,
    headline,
    method_sentence,
    mismatch_sentence,
    one_line,
)

SUITE_NAME = "performance gate"
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _x(text: object) -> str:
    """Text XML 1.0 can carry (ElementTree escapes the rest; it does not drop these)."""
    return _NOT_XML.sub("", str(text))


def check_detail(c: CheckResult) -> str:
    """The figures of one check, one per line: the body of its failure or its system-out."""
    direction = "higher is worse" if c.tolerance.higher_is_worse else "lower is worse"
    kind = "relative" if c.tolerance.relative else "absolute"
    rows = [("check", c.name),
            ("kind", f"{c.kind} of {c.subject}"),
            ("verdict", c.verdict + (" (advisory: never fails the gate)" if c.advisory else "")),
            ("baseline", fmt_value(c.baseline, c.unit)),
            ("current", fmt_value(c.current, c.unit)),
            ("change", f"{fmt_change(c)} {fmt_interval(c)}"
                       + (f" at {fmt_confidence(c.confidence)} confidence"
                          if c.confidence is not None else "")),
            ("tolerance", f"{fmt_tolerance(c.tolerance, c.unit)} ({kind}, {direction})")]
    if c.p_value is not None:
        rows.append(("p-value", f"{c.p_value:.3g} (Holm-adjusted)"))
    rows.append(("method", c.method))
    if c.reason:
        rows.append(("reason", one_line(c.reason)))
    if c.advice:
        rows.append(("advice", one_line(c.advice)))
    return "\n".join(f"{k + ':':<11}{v}" for k, v in rows) + "\n"


def _message(c: CheckResult) -> str:
    reason = one_line(c.reason) or f"{fmt_change(c)} {fmt_interval(c)}"
    if c.verdict == "inconclusive" and c.advice:
        return f"{reason}; would decide it: {one_line(c.advice)}"
    return reason


def _case(suite: ET.Element, classname: str, name: str) -> ET.Element:
    return ET.SubElement(suite, "testcase", classname=_x(classname), name=_x(name), time="0")


def _outcome(case: ET.Element, tag: str, kind: str, message: str, body: str) -> None:
    el = ET.SubElement(case, tag, type=_x(kind), message=_x(message))
    el.text = _x(body)


def _out(case: ET.Element, text: str) -> None:
    ET.SubElement(case, "system-out").text = _x(text)


def _add_check(suite: ET.Element, c: CheckResult, inconclusive_fails: bool) -> None:
    case = _case(suite, c.kind, c.name)
    detail = check_detail(c)
    if c.verdict == "regressed" and not c.advisory:
        _outcome(case, "failure", "regressed", _message(c), detail)
    elif c.verdict == "inconclusive" and not c.advisory:
        tag = "failure" if inconclusive_fails else "skipped"
        _outcome(case, tag, "inconclusive", f"inconclusive: {_message(c)}", detail)
    else:
        if c.advisory and c.verdict in ("regressed", "inconclusive"):
            detail = f"advisory {c.verdict}: {_message(c)}\n{detail}"
        _out(case, detail)


def _add_hard(suite: ET.Element, h: HardFailure, name: str) -> None:
    case = _case(suite, "hard", name)
    _outcome(case, "failure", h.kind, f"hard failure {h.kind}: {one_line(h.detail)}",
             f"{h.detail}\nA hard failure fails the gate whatever the statistics say.\n")


def _side_properties(side: Side, key: str) -> list[tuple[str, str]]:
    props = [(f"{key}.label", side.label), (f"{key}.run_ids", ",".join(side.run_ids)),
             (f"{key}.git_commit", side.git_commit or "unknown")]
    if side.profile is not None:
        props.append((f"{key}.profile", side.profile))
    props.append((f"{key}.toggles", fmt_toggles(side)))
    return props


def _properties(gate: GateResult) -> list[tuple[str, str]]:
    return [("gate.schema_version", str(gate.schema_version)), ("gate.verdict", gate.verdict),
            ("gate.exit_code", str(gate.exit_code)),
            *_side_properties(gate.baseline, "baseline"),
            *_side_properties(gate.current, "current"),
            ("method", gate.method), ("misrate", f"{gate.misrate:g}"),
            ("block_s", str(gate.block_s)), ("resamples", str(gate.resamples)),
            ("seed", str(gate.seed)),
            ("inconclusive_fails", str(gate.inconclusive_fails).lower()),
            ("mismatches", "; ".join(gate.mismatches)),
            ("allowed_mismatch", str(gate.allowed_mismatch).lower())]


def _suite_out(gate: GateResult) -> str:
    lines = [headline(gate), exit_sentence(gate), ""]
    for side in (gate.baseline, gate.current):
        lines.append(f"{side.label}: runs {', '.join(side.run_ids) or '-'}; commit "
                     f"{fmt_commit(side.git_commit)}; profile {side.profile or 'unknown'}; "
                     f"toggles {fmt_toggles(side)}")
    if gate.mismatches:
        lines += ["", f"Mismatches: {mismatch_sentence(gate)}",
                  *(f"  - {m}" for m in gate.mismatches)]
    lines += ["", method_sentence(gate)]
    return "\n".join(lines) + "\n"


def _unique(name: str, seen: set[str]) -> str:
    out, n = name, 1
    while out in seen:
        n += 1
        out = f"{name} #{n}"
    seen.add(out)
    return out


def junit_xml(gate: GateResult) -> str:
    """The gate as a JUnit XML document (UTF-8, with its declaration)."""
    root = ET.Element("testsuites", name="harness gate")
    suite = ET.SubElement(root, "testsuite", name=SUITE_NAME)
    props = ET.SubElement(suite, "properties")
    for name, value in _properties(gate):
        ET.SubElement(props, "property", name=_x(name), value=_x(value))
    for c in gate.checks:
        _add_check(suite, c, gate.inconclusive_fails)
    seen: set[str] = set()
    for h in gate.hard_failures:
        _add_hard(suite, h, _unique(h.kind, seen))
    if gate.cannot_judge or gate.verdict == "cannot_judge":
        reasons = gate.cannot_judge or [gate.summary]
        case = _case(suite, "gate", "cannot judge")
        _outcome(case, "error", "cannot_judge",
                 "cannot judge: " + "; ".join(one_line(r) for r in reasons),
                 "\n".join(reasons) + "\nThe run cannot be judged: exit code 3.\n")
    ET.SubElement(suite, "system-out").text = _x(_suite_out(gate))

    cases = suite.findall("testcase")
    counts = {"tests": len(cases),
              "failures": sum(c.find("failure") is not None for c in cases),
              "errors": sum(c.find("error") is not None for c in cases),
              "skipped": sum(c.find("skipped") is not None for c in cases)}
    for el in (root, suite):
        for key, value in counts.items():
            el.set(key, str(value))
        el.set("time", "0")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") \
        + "\n"
