"""`summary.md` of a gate: the verdict first, then what decided it, then every check.

Fit for a GitHub job summary, a pull-request comment or a GitLab note: plain
Markdown (GitHub-flavoured tables), no icons, no HTML. The first line is the
verdict, e.g.

    **REGRESSED**: `p95 GET /api/v1/dashboard/overview` +42% [+31%, +55%] (tolerance +15%)

The people-facing formatting of a check (values, changes, intervals,
tolerances, the headline, the order of regressions) lives here too, shared by
`harness.outputs.junit` and `harness.outputs.gate_table`, so the three outputs
say the same thing in the same words.

Units (`CheckResult.unit`): `ms`; `%` and `points` (values in percent,
absolute changes in points); `share` (values as fractions of 1, shown as
percent, absolute changes in points); `ratio` (a plain number, e.g. retry
amplification). A relative tolerance means `change` is current / baseline,
shown as +/-%; an absolute one means `change` is current - baseline, in the
unit of the values (points for percentages), and the tolerance's `limit` is on
the same scale as `change`.
"""

from __future__ import annotations

import math
import re

from harness.model.gate import CheckResult, GateResult, Side, Tolerance
from harness.outputs.numbers import ms, ms_decimals

STATUS = {"pass": "PASS", "regressed": "REGRESSED", "inconclusive": "INCONCLUSIVE",
          "cannot_judge": "CANNOT JUDGE"}
"""The plain-text status word of each gate verdict."""

DASH = "–"
MAX_LISTED = 10
"""Regressions and inconclusive checks listed one line each before "and N more"."""

_PERCENT_UNITS = ("%", "points", "pt")
_FRACTION_UNITS = ("share",)


# ---------------------------------------------------------------- numbers for people


def _num(x: float, digits: int) -> str:
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:,.{digits}f}"


def _signed(x: float, digits: int) -> str:
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "+inf" if x > 0 else "-inf"
    s = f"{x:+,.{digits}f}"
    return "+" + s[1:] if s.startswith("-") and float(s.replace(",", "")) == 0 else s


def pct(ratio_minus_one_percent: float) -> str:
    """+42%, -3.5%: whole percent from 10% up, one decimal below."""
    p = ratio_minus_one_percent
    digits = 0 if math.isfinite(p) and abs(p) >= 9.95 else 1
    return _signed(p, digits) + "%"


def _points(d: float) -> str:
    return _signed(d, 2 if abs(d) < 1 else 1) + " pt"


def fmt_value(value: float | None, unit: str) -> str:
    """A baseline or current value: `12.3 ms`, `1.20%`, `1.050`."""
    if value is None:
        return DASH
    if unit == "ms":
        return f"{ms(value)} ms"
    if unit in _PERCENT_UNITS:
        return f"{_num(value, 2)}%"
    if unit in _FRACTION_UNITS:
        return f"{_num(100 * value, 2)}%"
    if unit == "ratio":
        return _num(value, 3)
    return f"{value:,.4g} {unit}".strip()


def _difference(d: float, unit: str) -> str:
    if unit == "ms":
        return _signed(d, ms_decimals(d)) + " ms"
    if unit in _PERCENT_UNITS:
        return _points(d)
    if unit in _FRACTION_UNITS:
        return _points(100 * d)
    if unit == "ratio":
        return _signed(d, 3)
    return f"{d:+,.4g} {unit}".strip()


def fmt_change_value(change: float, check: CheckResult) -> str:
    """One value on the scale of `change`: +42% (relative) or -3.1 pt / +4.0 ms (absolute)."""
    if check.tolerance.relative:
        return pct((change - 1) * 100)
    return _difference(change, check.unit)


def fmt_change(check: CheckResult) -> str:
    return DASH if check.change is None else fmt_change_value(check.change, check)


def fmt_interval(check: CheckResult) -> str:
    """`[+31%, +55%]`, or a dash when there is none."""
    if check.interval is None:
        return DASH
    lo, hi = check.interval
    return f"[{fmt_change_value(lo, check)}, {fmt_change_value(hi, check)}]"


def fmt_tolerance(tolerance: Tolerance, unit: str) -> str:
    """As the policy wrote it, else from the limit: `+15%`, `-5.0 pt`, `+20.0 ms`."""
    if tolerance.text:
        return tolerance.text
    sign = 1 if tolerance.higher_is_worse else -1
    if tolerance.relative:
        return pct(sign * 100 * tolerance.limit)
    return _difference(sign * tolerance.limit, unit)


def fmt_confidence(confidence: float | None) -> str:
    if confidence is None:
        return DASH
    text = f"{100 * confidence:.3f}".rstrip("0").rstrip(".")
    return f"{text}%"


def verdict_label(check: CheckResult) -> str:
    """`regressed`, `regressed (advisory)`, `pass`, `improved`, `inconclusive`."""
    return f"{check.verdict} (advisory)" if check.advisory else check.verdict


def fmt_commit(commit: str | None) -> str:
    return (commit or "unknown")[:12]


def fmt_toggles(side: Side) -> str:
    if not side.toggles:
        return "profile defaults"
    return ", ".join(f"{k}={'true' if v else 'false'}" for k, v in sorted(side.toggles.items()))


def fmt_runs(side: Side, limit: int = 4) -> list[str]:
    """The side's run ids, the first few and how many more."""
    ids = list(side.run_ids)
    if len(ids) <= limit:
        return ids
    return [*ids[:limit - 1], f"... {len(ids) - limit + 1} more ({len(ids)} runs)"]


_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def one_line(text: str) -> str:
    """Whitespace (newlines included) collapsed, control characters dropped: one line."""
    return " ".join(_CONTROL.sub("", text).split())


# ---------------------------------------------------------------- what the gate says


def _margin(t: Tolerance) -> float:
    if not t.relative:
        return t.limit
    arg = 1 + (t.limit if t.higher_is_worse else -t.limit)
    return abs(math.log(arg)) if arg > 0 else math.inf


def excess(check: CheckResult) -> float:
    """How far the change lies on the bad side, in tolerances (1.0: right on it)."""
    c, t = check.change, check.tolerance
    if c is None or math.isnan(c):
        return 0.0
    if t.relative:
        bad = (math.log(c) if c > 0 else -math.inf) * (1 if t.higher_is_worse else -1)
    else:
        bad = c if t.higher_is_worse else -c
    m = _margin(t)
    if m == 0 or math.isinf(m):
        return bad * math.inf if bad else 0.0
    return bad / m


def regressions(gate: GateResult, advisory: bool = False) -> list[CheckResult]:
    """The regressed checks (failing ones, or the advisory ones), the worst first."""
    found = [c for c in gate.checks if c.verdict == "regressed" and c.advisory == advisory]
    return sorted(found, key=lambda c: -excess(c))


def undecided(gate: GateResult) -> list[CheckResult]:
    return [c for c in gate.checks if c.verdict == "inconclusive"]


def _same(text: str) -> str:
    return text


def check_figures(check: CheckResult, text=_same) -> str:
    """`+42% [+31%, +55%] (tolerance +15%)`; `text` renders the policy's own words."""
    tolerance = f"(tolerance {text(fmt_tolerance(check.tolerance, check.unit))})"
    if check.change is None:
        return f"no estimate {tolerance}"
    if check.interval is None:
        return f"{fmt_change(check)} {tolerance}"
    return f"{fmt_change(check)} {fmt_interval(check)} {tolerance}"


def headline(gate: GateResult, code=_same, text=_same) -> str:
    """The verdict in one line, its plain status word first.

    `code` renders names (checks), `text` free text (details, reasons) for the
    output at hand: Markdown escapes them, the terminal and JUnit do not."""
    word = STATUS.get(gate.verdict, gate.verdict.upper())
    failing, hard = regressions(gate), gate.hard_failures
    if gate.verdict == "cannot_judge":
        why = "; ".join(one_line(r) for r in gate.cannot_judge) or one_line(gate.summary)
        return f"{word}: {text(why)}"
    parts = []
    if hard:
        more = f" (+{len(hard) - 1} more hard failures)" if len(hard) > 1 else ""
        parts.append(f"hard failure {code(hard[0].kind)}: {text(hard[0].detail)}{more}")
    if failing:
        worst = failing[0]
        more = f" (+{len(failing) - 1} more regressed)" if len(failing) > 1 else ""
        parts.append(f"{code(worst.name)} {check_figures(worst, text)}{more}")
    if parts:
        return f"{word}: " + "; ".join(parts)
    open_ = [c for c in undecided(gate) if not c.advisory]
    if gate.verdict == "inconclusive" and open_:
        fails = ("fails CI (policy: inconclusive fails)" if gate.inconclusive_fails
                 else "does not fail CI")
        return (f"{word}: {len(open_)} of {len(gate.checks)} checks undecided, e.g. "
                f"{code(open_[0].name)} {check_figures(open_[0], text)}; {fails}")
    if gate.verdict == "pass":
        improved = sum(c.verdict == "improved" for c in gate.checks)
        extra = f", {improved} improved" if improved else ""
        return f"{word}: {len(gate.checks)} checks within tolerance{extra}"
    return f"{word}: {text(gate.summary)}"


def exit_sentence(gate: GateResult) -> str:
    return {0: "Exit code 0: the gate does not fail CI.",
            1: "Exit code 1: the gate fails CI.",
            3: "Exit code 3: the run cannot be judged."}.get(gate.exit_code,
                                                             f"Exit code {gate.exit_code}.")


def method_sentence(gate: GateResult) -> str:
    method = one_line(gate.method)
    details = []
    if "bootstrap" in method.lower():
        if f"{gate.block_s} s" not in method:
            details.append(f"{gate.block_s} s blocks")
        details += [f"{gate.resamples:,} resamples", f"seed {gate.seed}"]
    shown = f"{method} ({', '.join(details)})" if details else method
    inconclusive = "fail" if gate.inconclusive_fails else "do not fail"
    return (f"Method: {shown}; misrate {gate.misrate:g} for the whole gate, Holm-adjusted "
            f"across its checks; each interval is at its check's adjusted confidence; "
            f"inconclusive checks {inconclusive} CI.")


def mismatch_sentence(gate: GateResult) -> str:
    if gate.allowed_mismatch:
        return ("Compared despite these differences (--allow-mismatch): the comparison may "
                "mean nothing.")
    return "These differences make the comparison meaningless; it was not allowed."


# ---------------------------------------------------------------- Markdown


_ESCAPE = re.compile(r"([\\`*_\[\]<>&|~#])")


def md_text(text: str) -> str:
    """Free text (reasons, details, advice) shown literally: one line, Markdown escaped."""
    return _ESCAPE.sub(r"\\\1", one_line(text))


def md_code(text: str, in_table: bool = False) -> str:
    """A name as a code span: literal whatever it holds (`{ } / & < >`, backticks, pipes)."""
    text = one_line(text)
    if in_table:
        text = text.replace("|", "\\|")  # GFM: a pipe ends a cell even inside a code span
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _toggles(side: Side) -> str:
    if not side.toggles:
        return fmt_toggles(side)
    return ", ".join(md_code(t, True) for t in fmt_toggles(side).split(", "))


def _side_table(gate: GateResult) -> list[str]:
    b, c = gate.baseline, gate.current
    rows = [("runs", ", ".join(md_code(r, True) for r in fmt_runs(b)) or DASH,
             ", ".join(md_code(r, True) for r in fmt_runs(c)) or DASH),
            ("commit", md_code(fmt_commit(b.git_commit), True),
             md_code(fmt_commit(c.git_commit), True)),
            ("profile", md_text(b.profile or "unknown"), md_text(c.profile or "unknown")),
            ("toggles", _toggles(b), _toggles(c))]
    lines = [f"| | {md_text(b.label)} | {md_text(c.label)} |", "|---|---|---|"]
    lines += [f"| {name} | {left} | {right} |" for name, left, right in rows]
    return lines


def _listed(items: list[str], total: int) -> list[str]:
    out = items[:MAX_LISTED]
    if total > MAX_LISTED:
        out.append(f"- ... and {total - MAX_LISTED} more (see the table)")
    return out


def _check_line(c: CheckResult) -> str:
    return (f"- {md_code(c.name)}: {fmt_value(c.baseline, c.unit)} -> "
            f"{fmt_value(c.current, c.unit)}, {check_figures(c, md_text)}")


def gate_markdown(gate: GateResult) -> str:
    """The gate as Markdown: verdict first, then what decided it, then every check."""
    lines = [_first_line(gate), "", exit_sentence(gate)]
    if gate.cannot_judge:
        lines += ["", "### Cannot be judged", ""]
        lines += [f"- {md_text(r)}" for r in gate.cannot_judge]
    if gate.hard_failures:
        lines += ["", "### Hard failures (fail the gate whatever the statistics say)", ""]
        lines += [f"- **{md_code(h.kind)}**: {md_text(h.detail)}" for h in gate.hard_failures]
    failing = regressions(gate)
    if failing:
        lines += ["", f"### Regressions ({len(failing)})", ""]
        lines += _listed([_check_line(c) for c in failing], len(failing))
    advisory = regressions(gate, advisory=True)
    if advisory:
        lines += ["", f"### Advisory regressions ({len(advisory)}, not failing the gate)", ""]
        lines += _listed([_check_line(c) for c in advisory], len(advisory))
    if gate.mismatches:
        allowed = "allowed" if gate.allowed_mismatch else "not allowed"
        lines += ["", f"### Mismatches ({allowed})", "", mismatch_sentence(gate), ""]
        lines += [f"- {md_text(m)}" for m in gate.mismatches]
    lines += ["", "### Compared", "", *_side_table(gate), "", md_text(method_sentence(gate))]
    if gate.checks:
        lines += ["", f"### Checks ({len(gate.checks)})", "",
                  "| check | baseline | current | change | interval | tolerance | verdict |",
                  "|---|---:|---:|---:|---:|---:|---|"]
        for c in gate.checks:
            verdict = verdict_label(c)
            if c.verdict == "regressed" and not c.advisory:
                verdict = f"**{verdict}**"
            lines.append(
                f"| {md_code(c.name, True)} | {fmt_value(c.baseline, c.unit)} | "
                f"{fmt_value(c.current, c.unit)} | {fmt_change(c)} | {fmt_interval(c)} | "
                f"{md_text(fmt_tolerance(c.tolerance, c.unit))} | {verdict} |")
    open_ = undecided(gate)
    if open_:
        lines += ["", f"### Inconclusive ({len(open_)})", ""]
        lines += _listed([f"- {md_code(c.name)}: {md_text(c.reason or 'undecided')}"
                          + (f"; would decide it: {md_text(c.advice)}" if c.advice else "")
                          for c in open_], len(open_))
    return "\n".join(lines) + "\n"


def _first_line(gate: GateResult) -> str:
    word, _, rest = headline(gate, code=md_code, text=md_text).partition(": ")
    return f"**{word}**: {rest}"
