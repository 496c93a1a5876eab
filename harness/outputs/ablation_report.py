"""`reports/ablate/<id>/report.html`: every configuration against all on, then one pair in full.

An ablation has many configurations; the compare page (`harness.outputs.report.
compare_page`) is two-sided. So the page is the compare page with one section of its
own in front (`templates/ablation.html.j2` extends `compare.html.j2`):

* **Every configuration** (`configurations`, pure): the table `ablate.md` holds, one
  row per configuration, from `ablate.json` itself so the page and the record cannot
  disagree: p95 per endpoint, throughput, DB time and queries per request, each cache's
  hit ratio, as the change against all on with its 95% interval (the same text:
  `ablation_markdown.change_parts`) and the configuration's measured value under it;
  and per configuration **the verdict**: the paired gate of that configuration (B)
  against all on (A) over the rounds that ran both, with the store's policy: exactly
  what `harness ab` would say of the pair. A cell is coloured by the gate's verdict on
  the same check where the gate has one (p95 of an endpoint, a cache's hit ratio): the
  record's intervals are 95% each, unadjusted, and know no tolerance; the gate's are
  Holm-adjusted against the policy's tolerances, and that is what "regressed" means.
* Then the widest pair in full, as a `harness ab` job's page shows it: all off (B)
  against all on (A), paired by round, every run of both sides. Without all off (not
  run, or not complete in any round beside all on), the first toggle-off configuration
  that was takes B's place.

The verdicts cost one paired gate per configuration, each what `harness ab`'s gate of
one job costs (every run is read once); a configuration never complete beside all on has
no verdict, and says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from harness.errors import ConfigError
from harness.model.ablation import METRIC_UNITS, AblationEffect, AblationRecord
from harness.model.files import write_text
from harness.model.gate import CheckResult, GateResult
from harness.outputs.ablation_markdown import (
    HITS_NOTE,
    Column,
    change_parts,
    columns,
    number,
    reference_value,
    why_missing,
)
from harness.outputs.report.inputs import (
    Comparison,
    ReportInputs,
    read_side,
    secrets_of,
    store_policy,
)
from harness.run import layout

REPORT_FILE = "report.html"
TEMPLATE = "ablation.html.j2"
VERDICT_WORDS = {"pass": "pass", "regressed": "regressed", "inconclusive": "inconclusive",
                 "cannot_judge": "cannot judge"}

Gates = Mapping[str, GateResult | str]
"""Configuration name -> its paired gate against the reference, or why there is none."""


def check_name(metric: str, subject: str) -> str | None:
    """The gate's check of the same metric of the same subject (whose verdict colours the
    cell), or None: the gate has no check of throughput or DB time per request."""
    return {"p95": f"p95 {subject}",
            "cache_hit_ratio": f"cache_hit_ratio {subject}"}.get(metric)


def _sort(e: AblationEffect) -> float | str:
    """The change on the scale a reader sorts by: % for ratios, points for points."""
    if e.change is None:
        return ""
    return round((e.change - 1) * 100, 4) if e.scale == "ratio" else round(e.change, 4)


def _cell(config: str, metric: str, subject: str, e: AblationEffect | None,
          check: CheckResult | None) -> dict:
    """One cell as the template shows it (`bold`, not `clear`: jinja would read
    `cell.clear` as the dict's method, always true)."""
    if e is None or e.change is None:
        why = (e.why_not if e is not None else "") or "not measured"
        return {"change": "n/a", "interval": "", "value": "", "bold": False,
                "verdict": None, "sort": "", "title": f"{config}: {why}"}
    change, interval = change_parts(e)
    verdict = check.verdict if check is not None else None
    title = f"{config} against the reference: {change} {interval}".rstrip()
    if check is not None:
        title += f"; gate: {check.verdict} ({check.reason})"
    return {"change": change, "interval": interval, "bold": e.clear, "verdict": verdict,
            "value": number(e.value, e.unit) if e.value is not None else "–",
            "sort": _sort(e), "title": title}


def verdict_of(gate: GateResult | str | None) -> dict:
    """A configuration's verdict as the table shows it: the gate's word, its counts and
    summary; or why there is none."""
    if gate is None:
        return {"state": "none", "word": "not judged", "counts": "",
                "detail": "never complete in the same round as the reference"}
    if isinstance(gate, str):
        return {"state": "none", "word": "not judged", "counts": "", "detail": gate}
    counts = [(v, sum(1 for c in gate.checks if c.verdict == v))
              for v in ("regressed", "improved", "inconclusive", "pass")]
    text = ", ".join(f"{n} {v}" for v, n in counts if n)
    hard = "; ".join(f"hard failure: {h.kind.replace('_', ' ')}" for h in gate.hard_failures)
    return {"state": gate.verdict, "word": VERDICT_WORDS[gate.verdict],
            "counts": f"checks: {text}" if text else "no checks",
            "detail": gate.summary + (f" ({hard})" if hard else "")}


def _table(record: AblationRecord, cols: list[Column], gates: Gates,
           missing: list[str]) -> dict:
    by = {(e.config, e.metric, e.subject): e for e in record.effects}
    reference = []
    for metric, subject, _ in cols:
        ref = reference_value(record, metric, subject)
        reference.append(number(ref.reference, ref.unit) if ref and ref.reference is not None
                         else "n/a")
    rows = []
    for config in record.configurations:
        if config.name == record.reference:
            continue
        gate = gates.get(config.name)
        checks = {c.name: c for c in gate.checks} if isinstance(gate, GateResult) else {}
        cells = []
        for metric, subject, _ in cols:
            e = by.get((config.name, metric, subject))
            name = check_name(metric, subject)
            cells.append(_cell(config.name, metric, subject, e,
                               checks.get(name) if name else None))
            if (why := why_missing(config.name, metric, subject, e)) is not None:
                missing.append(why)
        rows.append({"name": config.name, "spec": config.spec,
                     "off": ", ".join(config.off) or "none", "verdict": verdict_of(gate),
                     "cells": cells})
    heads = [{"head": h, "subject": "" if m in ("p95", "cache_hit_ratio") else s,
              "unit": "pt" if m == "cache_hit_ratio" else METRIC_UNITS[m]}
             for m, s, h in cols]
    return {"heads": heads, "reference": reference, "rows": rows}


def configurations(record: AblationRecord, gates: Gates) -> dict:
    """The page's first section: every configuration against the reference, as
    `ablate.md` lays it out, each with its gate's verdict (see the module). Pure."""
    spec = {c.name: c.spec for c in record.configurations}
    main, caches = columns(record)
    missing: list[str] = []
    out = {"reference": record.reference, "reference_spec": spec.get(record.reference, ""),
           "command": record.command, "confidence": f"{record.confidence:.0%}",
           "method": record.method, "notes": list(record.notes), "hits_note": HITS_NOTE,
           "main": None, "caches": None, "missing": missing,
           "message": None if record.effects else
           "no configuration was measured against the reference in the same round yet"}
    if record.effects:
        out["main"] = _table(record, main, gates, missing)
        out["caches"] = _table(record, caches, gates, missing) if caches else None
    done = sum(r.status == "complete" for r in record.runs)
    out["facts"] = (f"{record.rounds} round(s) planned, {done} of {len(record.runs)} runs "
                    f"complete · {record.users} users, {record.duration_s:g} s measured per "
                    f"run after {record.warmup_s:g} s warm-up · dataset {record.dataset}, "
                    f"seed {record.seed}")
    return out


def render_ablation(inputs: ReportInputs, record: AblationRecord, gates: Gates,
                    generated_at: datetime | None = None) -> str:
    """The whole page as one string: the compare page's sections of `inputs` (the pair in
    full) with every configuration's section in front."""
    from harness.outputs.report import render
    from harness.outputs.report.compare_page import context

    sections = context(inputs)
    sections["ablation"] = configurations(record, gates) | {
        "job": inputs.comparison.job if inputs.comparison else None}
    return render.render_page(inputs, TEMPLATE, sections, generated_at)


def write_ablation_report(record: AblationRecord, runs_dir: Path, job: Path,
                          store: Path) -> Path:
    """Render the page into `job/report.html`; ConfigError when no round paired any
    configuration with the reference."""
    from harness.analysis import paired
    from harness.analysis.checks import RunData
    from harness.run import gate as run_gate

    names = [c.name for c in record.configurations if c.name != record.reference]
    by_round: dict[int, dict[str, Path]] = {}
    for r in record.runs:
        if r.status == "complete" and r.run_id:
            by_round.setdefault(r.round, {})[r.config] = runs_dir / r.run_id

    def paired_with(name: str) -> list[tuple[int, Path, Path]]:
        return [(n, s[record.reference], s[name]) for n, s in sorted(by_round.items())
                if record.reference in s and name in s]

    # all off when it was measured beside all on, else the first configuration that was
    b_name = next((n for n in sorted(names, key=lambda n: n != "all off") if paired_with(n)),
                  None)
    if b_name is None:
        raise ConfigError(f"no round with {record.reference} and another configuration "
                          "complete")
    rounds = paired_with(b_name)
    sides_a = [read_side(a, "A") for _, a, _ in rounds]
    sides_b = [read_side(b, "B", traces=i == 0) for i, (_, _, b) in enumerate(rounds)]
    data: dict[Path, RunData] = {}
    for (_, a, b), x, y in zip(rounds, sides_a, sides_b, strict=True):
        data[a], data[b] = RunData(x.result, x.log), RunData(y.result, y.log)

    def run_data(path: Path) -> RunData:
        if path not in data:
            (result, log), = run_gate.read_runs([path])
            data[path] = RunData(result, log)
        return data[path]

    spec = {c.name: c.spec for c in record.configurations}
    settings = run_gate.settings_from(store_policy(store))
    outcomes: dict[str, paired.Paired] = {}
    gates: dict[str, GateResult | str] = {}
    for name in names:  # one paired gate per configuration, as harness ab would judge it
        pairs = paired_with(name)
        if not pairs:
            continue
        try:
            outcome = paired.compare_paired(
                [(run_data(a), run_data(b)) for _, a, b in pairs], settings,
                (f"A {spec[record.reference]}", f"B {spec[name]}"), allow_mismatch=True)
        except ConfigError as exc:
            gates[name] = str(exc)
            continue
        outcome.gate.decided_at = datetime.now(UTC).isoformat()
        outcomes[name], gates[name] = outcome, outcome.gate
    if b_name not in outcomes:
        raise ConfigError(f"{b_name} against {record.reference}: {gates.get(b_name)}")
    outcome = outcomes[b_name]
    intro = (f"harness ablate job {job.name}: every configuration against {record.reference} "
             f"first (from ablate.json beside this page, with each one's paired gate); then "
             f"{b_name} (B) against {record.reference} (A) in full, paired by round, as a "
             f"harness ab job's page shows a pair")
    comparison = Comparison(
        f"A: {record.reference} ({spec[record.reference]})", f"B: {b_name} ({spec[b_name]})",
        ", ".join(s.result.run.run_id for s in sides_a),
        ", ".join(s.result.run.run_id for s in sides_b), paired=True, job=job.name,
        rounds=[{"round": n, "a": x.result.run.run_id, "b": y.result.run.run_id,
                 "changes": outcome.rounds[i]}
                for i, ((n, _, _), x, y) in enumerate(zip(rounds, sides_a, sides_b,
                                                          strict=True))])
    secrets: set[str] = set()
    for _, a, b in rounds:
        secrets |= secrets_of(layout.dataset_json(a)) | secrets_of(layout.dataset_json(b))
    inputs = ReportInputs(current=sides_b[0], current_rounds=sides_b[1:], baseline=sides_a,
                          gate=outcome.gate, secrets=frozenset(secrets), notes=[intro],
                          comparison=comparison)
    target = job / REPORT_FILE
    write_text(target, render_ablation(inputs, record, gates))
    return target
