"""A against B in interleaved rounds (`harness ab`): every check paired by round. Pure.

Rounds run A B, B A, A B, ... in one job on one machine, each on a fresh clone
of the same dataset. Round i's two runs are compared the way `compare` compares
one run with another (`Checks`: per-endpoint latency by block bootstrap over
5 s blocks of windows, rates over blocks of windows or scrapes), which gives an
effect d_i (a log ratio, or a difference of shares) and its standard error
s_i. The pair's two runs saw the same stretch of the machine's day, so d_i
carries no drift between rounds; the alternating order cancels what drift
remains inside a pair on average.

The combined effect is the mean of the d_i. Its standard error:

* from the rounds' own bootstrap SEs, sqrt(sum s_i^2) / n, with
  Welch-Satterthwaite degrees of freedom: this knows only the noise inside
  each run;
* with 5 or more rounds, also from the spread of the d_i themselves,
  sd(d) / sqrt(n) with n - 1 degrees of freedom, which includes whatever
  moves from round to round (a different clone's layout, start-up caches).
  The larger of the two is used, so the gate is never surer than either
  source of evidence allows.

Individual requests are never the unit; the same equivalence verdicts and
Holm adjustment as the stored-baseline gate decide (`compare.decide`).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np

from harness.analysis import checks
from harness.analysis import compare as cmp
from harness.analysis.stats import MIN_ROUNDS, Effect
from harness.errors import ConfigError
from harness.model.gate import GateResult


@dataclass(frozen=True)
class Paired:
    """The gate over all rounds, and each round's own estimates (check name -> change)."""

    gate: GateResult
    rounds: list[dict[str, float | None]]


def combine(effects: Sequence[Effect]) -> Effect:
    """The mean of per-round effects with the larger of the within- and between-round SE."""
    if not effects:
        raise ValueError("nothing to combine")
    if len(effects) == 1:
        return effects[0]
    n = len(effects)
    d = np.array([e.estimate for e in effects])
    first = effects[0]
    log = first.scale == "log_ratio"

    def mean(values: Sequence[float]) -> float:
        v = np.asarray(values, dtype=np.float64)
        if log:
            return float(np.exp(np.mean(np.log(v)))) if (v > 0).all() else math.nan
        return float(np.mean(v))

    se, df = math.inf, 1.0
    if np.isfinite(d).all() and all(math.isfinite(e.se) for e in effects):
        parts = np.array([e.se ** 2 for e in effects]) / n ** 2
        var = float(parts.sum())
        denom = float(sum(p * p / e.df for p, e in zip(parts, effects) if math.isfinite(e.df)))
        df = var * var / denom if denom > 0 else math.inf
        if n >= MIN_ROUNDS:
            between = float(np.var(d, ddof=1)) / n
            if between > var:
                var, df = between, float(n - 1)
        se = math.sqrt(var)
    return Effect(first.scale, float(d.mean()), se, max(df, 1.0),
                  mean([e.baseline for e in effects]), mean([e.current for e in effects]),
                  sum(e.n_base for e in effects), sum(e.n_cur for e in effects),
                  method=f"paired over {n} rounds ({first.method} per round)")


def _round_change(f: checks.Found) -> float | None:
    e = f.effect
    if e is None or not math.isfinite(e.estimate):
        return None
    return math.exp(e.estimate) if e.scale == "log_ratio" else e.estimate


def compare_paired(pairs: Sequence[tuple[checks.RunData, checks.RunData]],
                   settings: checks.GateSettings, labels: tuple[str, str] = ("A", "B"),
                   allow_mismatch: bool = False,
                   expected: Collection[str] = ()) -> Paired:
    """The gate of B against A over paired rounds (ConfigError: a refused comparison).

    `expected` names run facts (as `compare.mismatches` does, e.g. "trace sampling") that
    differ on purpose: what the job measures. They are listed, never refused."""
    if not pairs:
        raise ConfigError("an A/B comparison needs at least one round")
    a_runs, b_runs = [a.result for a, _ in pairs], [b.result for _, b in pairs]
    differ = cmp.mismatches(a_runs, b_runs)
    refused = [d for d in differ if d.partition(":")[0] not in expected]
    if refused and not allow_mismatch:
        raise ConfigError("refusing to compare rounds that differ in " + "; ".join(refused)
                          + " (--allow-mismatch to compare anyway)")
    per_round = [checks.Checks([a], [b], settings).collect() for a, b in pairs]
    by_name: dict[str, list[checks.Found]] = {}
    for found in per_round:
        for f in found:
            by_name.setdefault(f.name, []).append(f)
    combined: list[checks.Found] = []
    for name, fs in by_name.items():
        f = fs[0]
        missing = [i + 1 for i, found in enumerate(per_round)
                   if not any(g.name == name and g.effect is not None for g in found)]
        if missing:
            why = next((g.why_not for g in fs if g.why_not), "") or "not measured"
            combined.append(checks.Found(f.kind, f.subject, f.policy, f.unit, None, why_not=(
                f"{why} in round(s) {', '.join(map(str, missing))}")))
        else:
            combined.append(checks.Found(f.kind, f.subject, f.policy, f.unit,
                                      combine([g.effect for g in fs])))
    results = cmp.decide(combined, settings)
    method = (f"paired by round over {len(pairs)} round(s): block bootstrap over "
              f"{settings.block_s} s blocks of windows per round"
              + ("; between-round spread included" if len(pairs) >= MIN_ROUNDS else ""))
    gate = cmp.gate_result(results, a_runs, b_runs, settings, labels, method, differ,
                           allow_mismatch)
    rounds = [{f.name: _round_change(f) for f in found} for found in per_round]
    return Paired(gate, rounds)
