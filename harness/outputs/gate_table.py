"""The gate on the terminal: the verdict first, then what decided it, then every check.

The same content as `summary.md` (`harness.outputs.gate_markdown`), verdicts
coloured. Every cell is a `rich.text.Text`, so a name holding `[` `]` is never
read as console markup.
"""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from harness.model.gate import CheckResult, GateResult
from harness.outputs.gate_markdown import (
    MAX_LISTED,
    check_figures,
    exit_sentence,
    fmt_change,
    fmt_commit,
    fmt_interval,
    fmt_runs,
    fmt_toggles,
    fmt_tolerance,
    fmt_value,
    headline,
    method_sentence,
    mismatch_sentence,
    one_line,
    regressions,
    undecided,
    verdict_label,
)

GATE_STYLE = {"pass": "bold green", "regressed": "bold red", "inconclusive": "bold yellow",
              "cannot_judge": "bold magenta"}
CHECK_STYLE = {"pass": "green", "improved": "cyan", "regressed": "bold red",
               "inconclusive": "yellow"}


def check_style(check: CheckResult) -> str:
    if check.advisory:
        return "dim red" if check.verdict == "regressed" else \
            "dim " + CHECK_STYLE.get(check.verdict, "")
    return CHECK_STYLE.get(check.verdict, "")


def _lines(title: str, items: list[Text], style: str = "bold") -> list[Text]:
    if len(items) > MAX_LISTED:
        items = [*items[:MAX_LISTED],
                 Text(f"  ... and {len(items) - MAX_LISTED} more (see the table)")]
    return [Text(title, style=style), *items] if items else []


def _check_line(c: CheckResult) -> Text:
    line = Text("  ")
    line.append(c.name, style=check_style(c))
    line.append(f": {fmt_value(c.baseline, c.unit)} -> {fmt_value(c.current, c.unit)}, "
                f"{check_figures(c)}")
    return line


def sides_table(gate: GateResult) -> Table:
    """What is compared: runs, commit, profile, toggles of each side."""
    table = Table(title="compared", title_justify="left")
    table.add_column("")
    for side in (gate.baseline, gate.current):
        table.add_column(Text(side.label))
    b, c = gate.baseline, gate.current
    for name, left, right in (
            ("runs", ", ".join(fmt_runs(b)), ", ".join(fmt_runs(c))),
            ("commit", fmt_commit(b.git_commit), fmt_commit(c.git_commit)),
            ("profile", b.profile or "unknown", c.profile or "unknown"),
            ("toggles", fmt_toggles(b), fmt_toggles(c))):
        table.add_row(Text(name), Text(left or "–"), Text(right or "–"))
    return table


def checks_table(gate: GateResult) -> Table:
    """Every check: baseline, current, change, interval, tolerance, verdict (coloured)."""
    table = Table(title=f"checks ({len(gate.checks)})", title_justify="left")
    for col in ("check", "baseline", "current", "change", "interval", "tolerance", "verdict"):
        table.add_column(col, justify="left" if col in ("check", "verdict") else "right")
    for c in gate.checks:
        style = check_style(c)
        table.add_row(Text(c.name), Text(fmt_value(c.baseline, c.unit)),
                      Text(fmt_value(c.current, c.unit)), Text(fmt_change(c), style=style),
                      Text(fmt_interval(c)), Text(fmt_tolerance(c.tolerance, c.unit)),
                      Text(verdict_label(c), style=style))
    return table


def gate_table(gate: GateResult) -> Group:
    """The gate for the terminal (`Console().print(gate_table(gate))`)."""
    parts: list = [Text(headline(gate), style=GATE_STYLE.get(gate.verdict, "bold")),
                   Text(exit_sentence(gate))]
    parts += _lines("cannot be judged:", [Text(f"  {one_line(r)}", style="magenta")
                                          for r in gate.cannot_judge], "bold magenta")
    parts += _lines("hard failures (fail the gate whatever the statistics say):",
                    [Text(f"  {h.kind}: {one_line(h.detail)}", style="bold red")
                     for h in gate.hard_failures], "bold red")
    parts += _lines("regressions:", [_check_line(c) for c in regressions(gate)], "bold red")
    parts += _lines("advisory regressions (not failing the gate):",
                    [_check_line(c) for c in regressions(gate, advisory=True)], "red")
    if gate.mismatches:
        allowed = "allowed" if gate.allowed_mismatch else "not allowed"
        parts += [Text(f"mismatches ({allowed}): {mismatch_sentence(gate)}", style="bold yellow"),
                  *(Text(f"  {one_line(m)}", style="yellow") for m in gate.mismatches)]
    parts += [sides_table(gate), Text(method_sentence(gate), style="dim")]
    if gate.checks:
        parts.append(checks_table(gate))
    open_ = undecided(gate)
    parts += _lines("inconclusive:", [
        Text(f"  {c.name}: {one_line(c.reason or 'undecided')}"
             + (f"; would decide it: {one_line(c.advice)}" if c.advice else ""), style="yellow")
        for c in open_], "bold yellow")
    return Group(*parts)
