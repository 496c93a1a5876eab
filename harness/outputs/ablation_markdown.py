"""`ablate.md`: the ablation as Markdown tables, one row per configuration.

The first table holds the client-side p95 of every endpoint, throughput, and
DB time and queries per request; the second the cache hit ratios. The
reference row (all on) shows the measured values; every other row shows its
change against it with the 95% interval, bold when the interval excludes no
change. What cannot be estimated is `n/a`, with why below the table.
"""

from __future__ import annotations

from harness.model.ablation import AblationEffect, AblationRecord
from harness.model.endpoint import short_label

HITS_NOTE = ("Hits (stale hits included) per lookup, server side; changes in percentage "
             "points.")
MAIN = ("p95", "throughput", "db_time", "db_queries")
HEADS = {"throughput": "throughput", "db_time": "DB time / request",
         "db_queries": "DB queries / request", "cache_hit_ratio": "cache hit ratio"}


Column = tuple[str, str, str]
"""(metric, subject, heading) of one column of a table."""


def number(v: float, unit: str) -> str:
    """A measured value with its unit, to a precision that suits its size."""
    if unit == "%":
        return f"{v:.1f}%"
    digits = 0 if abs(v) >= 100 else 1 if abs(v) >= 10 else 2
    return f"{v:.{digits}f} {unit}"


def _pct(v: float) -> str:
    p = (v - 1) * 100
    return f"{p:+.0f}" if abs(p) >= 10 else f"{p:+.1f}"


def change_parts(e: AblationEffect) -> tuple[str, str]:
    """An effect's change and interval as text, e.g. (`+32%`, `[+18, +47]`) for a ratio,
    (`-40.0 pt`, `[-45.1, -34.9]`) for points; the interval is "" when unbounded. The
    one spelling of an effect: the Markdown cell and the HTML page both use it."""
    if e.change is None:
        return "n/a", ""
    if e.scale == "ratio":
        change = f"{_pct(e.change)}%"
        bounds = (_pct(e.low), _pct(e.high)) if e.low is not None and e.high is not None \
            else None
    else:
        change = f"{e.change:+.1f} pt"
        bounds = (f"{e.low:+.1f}", f"{e.high:+.1f}") if e.low is not None and \
            e.high is not None else None
    return change, f"[{bounds[0]}, {bounds[1]}]" if bounds else ""


def cell(e: AblationEffect | None) -> str:
    """One effect as `+32% [+18, +47]` (ratios) or `-40.0 pt [-45.1, -34.9]` (points),
    bold when its interval excludes no change."""
    if e is None or e.change is None:
        return "n/a"
    text = " ".join(p for p in change_parts(e) if p)
    return f"**{text}**" if e.clear else text


def columns(record: AblationRecord) -> tuple[list[Column], list[Column]]:
    """The two tables' columns, from the effects the record holds: p95 per endpoint,
    throughput, DB time and queries per request; then each cache's hit ratio."""
    effects = record.effects
    main = [("p95", k, f"p95 {short_label(k)}")
            for k in sorted({e.subject for e in effects if e.metric == "p95"})]
    for metric in MAIN[1:]:
        main += [(metric, s, HEADS[metric])
                 for s in sorted({e.subject for e in effects if e.metric == metric})]
    caches = [("cache_hit_ratio", c, c)
              for c in sorted({e.subject for e in effects if e.metric == "cache_hit_ratio"})]
    return main, caches


def reference_value(record: AblationRecord, metric: str, subject: str) -> AblationEffect | None:
    """The effect that carries the reference's measured value of a column (the first one
    that has it), or None: the reference never measured it."""
    return next((e for e in record.effects if (e.metric, e.subject) == (metric, subject)
                 and e.reference is not None), None)


def why_missing(config: str, metric: str, subject: str, e: AblationEffect | None) -> str | None:
    """The line that says why a cell is n/a (None: it is not, or nothing says why)."""
    if e is not None and e.change is None and e.why_not:
        return f"{config}, {HEADS.get(metric, metric)} {subject}: {e.why_not}"
    return None


def _table(record: AblationRecord, cols: list[Column], missing: list[str]) -> list[str]:
    by = {(e.config, e.metric, e.subject): e for e in record.effects}
    lines = ["| configuration | " + " | ".join(h for _, _, h in cols) + " |",
             "|---|" + "---|" * len(cols)]
    refs = []
    for metric, subject, _ in cols:
        ref = reference_value(record, metric, subject)
        refs.append(number(ref.reference, ref.unit) if ref else "n/a")
    lines.append(f"| {record.reference} (measured) | " + " | ".join(refs) + " |")
    for config in record.configurations:
        if config.name == record.reference:
            continue
        cells = []
        for metric, subject, _ in cols:
            e = by.get((config.name, metric, subject))
            cells.append(cell(e))
            if (why := why_missing(config.name, metric, subject, e)) is not None:
                missing.append(why)
        lines.append(f"| {config.name} | " + " | ".join(cells) + " |")
    return lines


def ablation_markdown(record: AblationRecord) -> str:
    """The whole `ablate.md`."""
    effects = record.effects
    main, caches = columns(record)
    done = sum(r.status == "complete" for r in record.runs)
    when = (record.analysed_at or record.created_at)[:16].replace("T", " ") + " UTC"
    facts = (f"{when} · {record.rounds} round(s) planned, {done} of {len(record.runs)} runs "
             f"complete · {record.users} users, {record.duration_s:g} s measured per run "
             f"after {record.warmup_s:g} s warm-up")
    intro = (f"Each optimization turned off alone (and all off: the naive profile, which also "
             f"lacks the optimization migrations), against {record.reference} (the optimized "
             f"profile), paired by round. A cell is the change against {record.reference} "
             f"with its {record.confidence:.0%} interval; **bold**: the interval excludes no "
             f"change (each interval alone, not adjusted for the table's many).")
    out = [f"# Ablation: scenario `{record.scenario}`, dataset `{record.dataset}`", "",
           f"`{record.command}`", "", facts, "", intro, ""]
    missing: list[str] = []
    if not effects:
        out += ["No configuration was measured against the reference in the same round yet.",
                ""]
    else:
        out += _table(record, main, missing) + [""]
        if caches:
            out += ["## Cache hit ratio", "", HITS_NOTE, ""]
            out += _table(record, caches, missing) + [""]
    if missing:
        out += ["n/a:", ""] + [f"- {m}" for m in missing] + [""]
    if record.method:
        out += [f"Method: {record.method}.", ""]
    if record.notes:
        out += ["Notes:", ""] + [f"- {n}" for n in record.notes] + [""]
    return "\n".join(out)
