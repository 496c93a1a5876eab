"""The gate: a run (or run set) against a baseline, check by check, to one verdict. Pure.

1. **Refuse what means nothing.** Runs that differ in scenario, shape, users,
   spawn rate, duration, dataset, faults, target workers or machine are not
   compared (a `ConfigError`, exit 2, naming each difference) unless allowed,
   and then every output says so. What is being compared (commit, profile,
   toggles) is shown, never refused.
2. **Cannot judge** a run whose load generator was saturated: its latencies
   describe the generator (exit 3); nor one whose acknowledged writes could not
   be checked against the database (a lost write cannot be ruled out).
3. **Hard failures**, whatever the statistics and the baseline: a tenant leak,
   a lost write (an acknowledged call missing from the database), an error
   rate above the absolute limit, client and server counts too far apart.
4. **Checks**, each an equivalence test against its tolerance
   (`harness.analysis.vd.decide`, Holm-adjusted so the misrate bounds the
   whole gate): per endpoint p50/p95/p99 latency (block bootstrap over the
   interval log's windows, all endpoints resampled with the same time blocks;
   with 5+ rounds a side, Hodges-Lehmann over the rounds' values), error rate
   and throughput shortfall (blocks of windows), per cache hit ratio and the
   ElevenLabs client's retry, amplification, failure and fallback rates
   (blocks of the server's 2 s scrapes), and the p95 of the service's own
   histograms: upstream (ElevenLabs) request time, each named DB query, pool
   acquire wait and the KPI view's change-to-visible lag (`buckets`: block
   bootstrap of bucket counts, quantiles as Prometheus' `histogram_quantile`).
   Advisory checks (p99, query and pool-wait p95 by default) are decided as a
   family of their own and never fail the gate.

The checks are collected by `harness.analysis.checks` (`Checks`, a `Found` each);
this module refuses, decides and sums them up.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from harness.analysis import stats
from harness.analysis import verdicts as vd
from harness.analysis.checks import Checks, Found, GateSettings, RunData
from harness.errors import ConfigError
from harness.model.gate import CheckResult, GateResult, HardFailure, Side, Tolerance
from harness.model.result import RunResult


def mismatches(base: Sequence[RunResult], cur: Sequence[RunResult]) -> list[str]:
    """What differs between the runs that would make their comparison meaningless."""
    def facts(r: RunResult) -> dict[str, object]:
        run, machine = r.run, r.run.machine
        return {"scenario": run.scenario, "shape": run.shape, "users": run.users,
                "spawn rate": run.spawn_rate, "duration": run.duration_s,
                "dataset": (run.dataset.preset, run.dataset.seed, run.dataset.generator_version),
                "faults": run.faults, "target workers": run.target_workers,
                # tracing costs the service CPU and latency (docs/tracing-notes.md)
                "trace sampling": run.trace_sampling,
                "CPU model": machine.cpu_model if machine else None,
                "CPU count": machine.logical_cpus if machine else run.cpu_count}
    out = []
    every = [facts(r) for r in [*base, *cur]]
    for key in every[0]:
        seen = sorted({repr(f[key]) for f in every})
        if len(seen) > 1:
            out.append(f"{key}: {' vs '.join(seen)}")
    return out


def _side(label: str, runs: Sequence[RunResult], toggles: set[str]) -> Side:
    first = runs[0].run
    target = first.target
    return Side(label=label, run_ids=[r.run.run_id for r in runs], git_commit=first.git_commit,
                profile=target.profile if target else first.profile,
                toggles={k: v for k, v in (target.toggles if target else {}).items()
                         if k in toggles})


def _differing_toggles(base: Sequence[RunResult], cur: Sequence[RunResult]) -> set[str]:
    seen: dict[str, set[bool]] = {}
    for r in [*base, *cur]:
        for k, v in (r.run.target.toggles if r.run.target else {}).items():
            seen.setdefault(k, set()).add(v)
    return {k for k, v in seen.items() if len(v) > 1}


def _to_stats(t: Tolerance) -> vd.Tolerance:
    """The policy's tolerance on the statistics' scale (points become fractions)."""
    return vd.Tolerance(t.limit if t.relative else t.limit / 100, t.relative,
                           t.higher_is_worse)


def _natural(unit: str, v: float | None) -> float | None:
    if v is None or not math.isfinite(v):
        return None
    return v / 1000.0 if unit == "ms" else v * 100 if unit == "%" else v


def _result(f: Found, tol: Tolerance, advisory: bool, v: vd.Verdict | None) -> CheckResult:
    common = {"name": f.name, "kind": f.kind, "subject": f.subject, "unit": f.unit,
              "tolerance": tol, "advisory": advisory}
    if v is None:
        return CheckResult(**common, baseline=None, current=None, change=None, interval=None,
                           confidence=None, verdict="inconclusive", reason=f.why_not,
                           advice=f.why_not)
    scale = 100.0 if f.unit == "%" else 1.0  # differences of shares are shown in points
    change = v.estimate * scale
    lo, hi = (x * scale for x in v.interval)
    interval = (lo, hi) if math.isfinite(lo) and math.isfinite(hi) else None  # JSON has no inf
    shown = (f"{(change - 1) * 100:+.1f}% [{(lo - 1) * 100:+.1f}%, {(hi - 1) * 100:+.1f}%]"
             if f.unit in ("ms", "ratio") else f"{change:+.2f}pt [{lo:+.2f}, {hi:+.2f}]")
    p = {"regressed": v.p_regressed, "improved": v.p_improved,
         "pass": v.p_equivalent}.get(v.verdict, min(v.p_regressed, v.p_equivalent))
    reason = {"regressed": "beyond the tolerance", "improved": "better beyond the tolerance",
              "pass": "within the tolerance",
              "inconclusive": "the interval reaches past the tolerance"}[v.verdict]
    if v.too_short:
        reason = "too few blocks (or rounds) a side to judge"
    return CheckResult(
        **common, baseline=_natural(f.unit, v.baseline), current=_natural(f.unit, v.current),
        change=change, interval=interval, confidence=v.confidence, verdict=v.verdict,
        p_value=p, method=v.method, advice=v.advice,
        reason=f"{shown}: {reason} ({tol.text or tol.limit})")


def decide(found: list[Found], settings: GateSettings) -> list[CheckResult]:
    out: list[CheckResult] = []
    for advisory in (False, True):  # advisory checks are a family of their own
        family = [f for f in found if settings.advisory(f.policy, f.subject) == advisory]
        tolerances = [settings.tolerance(f.policy, f.subject) for f in family]
        decided = iter(vd.decide(
            [vd.Check(f.name, f.effect, _to_stats(t)) for f, t in zip(family, tolerances)
             if f.effect is not None], settings.misrate, settings.min_blocks))
        for f, t in zip(family, tolerances):
            out.append(_result(f, t, advisory, next(decided) if f.effect is not None else None))
    return out


def hard_failures(cur: Sequence[RunResult], settings: GateSettings) -> list[HardFailure]:
    """What fails the gate whatever the checks say (and whatever the baseline did)."""
    out = []
    for r in cur:
        rid = r.run.run_id
        if r.correctness.tenant_leaks > settings.tenant_leaks_max:
            out.append(HardFailure(kind="tenant_leak", detail=(
                f"{r.correctness.tenant_leaks} tenant leak(s) in {rid}")))
        if r.writes is not None and r.writes.lost > 0:
            named = ", ".join(str(i) for i in r.writes.lost_ids)
            more = "" if len(r.writes.lost_ids) >= r.writes.lost else ", ..."
            out.append(HardFailure(kind="lost_writes", detail=(
                f"{r.writes.lost} of {r.writes.acknowledged} acknowledged write(s) missing "
                f"from the database in {rid} (call ids {named}{more})")))
        if r.totals.failure_rate > settings.error_rate_max:
            out.append(HardFailure(kind="error_rate", detail=(
                f"error rate {r.totals.failure_rate:.2%} in {rid} "
                f"(limit {settings.error_rate_max:.2%})")))
        a = r.agreement
        beyond = a.unexplained_ratio
        if beyond is not None and beyond > settings.agreement_max:
            edge = (f", {beyond:.2%} beyond the {a.edge_users} request(s) the window's "
                    "opening can explain" if a.edge_users else "")
            out.append(HardFailure(kind="agreement", detail=(
                f"clients counted {a.client_count}, the service {a.server_count} "
                f"({a.diff_ratio:.2%} apart{edge}) in {rid}")))
    return out


def unchecked_writes(cur: Sequence[RunResult]) -> list[str]:
    """Current runs whose acknowledged writes could not be read back: not judged clean."""
    return [f"acknowledged writes not checked in {r.run.run_id}: {r.writes.error or 'no reason'}"
            for r in cur if r.writes is not None and not r.writes.checked]


def compare(base: Sequence[RunData], cur: Sequence[RunData], settings: GateSettings,
            labels: tuple[str, str] = ("baseline", "current"),
            allow_mismatch: bool = False) -> GateResult:
    """The gate's result for `cur` against `base` (ConfigError: a refused comparison)."""
    if not base or not cur:
        raise ConfigError("a comparison needs at least one run on each side")
    base_r, cur_r = [r.result for r in base], [r.result for r in cur]
    differ = mismatches(base_r, cur_r)
    if differ and not allow_mismatch:
        raise ConfigError("refusing to compare runs that differ in " + "; ".join(differ)
                          + " (--allow-mismatch to compare anyway)")
    results = decide(Checks(base, cur, settings).collect(), settings)
    method = ("Hodges-Lehmann over rounds" if min(len(base), len(cur)) >= stats.MIN_ROUNDS
              else f"block bootstrap over {settings.block_s} s blocks of windows")
    return gate_result(results, base_r, cur_r, settings, labels, method, differ,
                       allow_mismatch)


def overall(results: Sequence[CheckResult], hard: Sequence[HardFailure],
            cannot_judge: Sequence[str], inconclusive_fails: bool) -> tuple[str, int, str]:
    """(verdict, exit code, one-line summary): cannot judge > regressed > inconclusive > pass,
    except that a lost write is `regressed` even in a run that cannot be judged (a
    saturated generator does not make a missing row less missing).

    Advisory checks never decide; `inconclusive` exits 0 unless the policy says fail."""
    failing = [c for c in results if c.verdict == "regressed" and not c.advisory]
    undecided = [c for c in results if c.verdict == "inconclusive" and not c.advisory]
    if cannot_judge and not any(h.kind == "lost_writes" for h in hard):
        return "cannot_judge", 3, cannot_judge[0]
    if hard or failing:
        return "regressed", 1, "regressed: " + "; ".join(
            [h.detail for h in hard] + [f"{c.name} {c.reason}" for c in failing[:3]])
    if undecided:
        return ("inconclusive", 1 if inconclusive_fails else 0,
                f"inconclusive: {len(undecided)} check(s) undecided, e.g. {undecided[0].name}")
    return "pass", 0, f"pass: {len(results)} checks within tolerance"


def gate_result(results: list[CheckResult], base_r: Sequence[RunResult],
                cur_r: Sequence[RunResult], settings: GateSettings, labels: tuple[str, str],
                method: str, differ: Sequence[str] = (), allow_mismatch: bool = False,
                hard: list[HardFailure] | None = None) -> GateResult:
    """Decided checks, hard failures and saturation to the gate's one verdict and exit code.

    Shared by `compare`, `harness.analysis.paired` (A/B rounds) and the benchmark gate."""
    toggles = _differing_toggles(base_r, cur_r)
    hard = hard_failures(cur_r, settings) if hard is None else hard
    saturated = [f"load generator saturated in {r.run.run_id}"
                 for r in [*base_r, *cur_r] if r.generator.saturated]
    saturated += unchecked_writes(cur_r)
    verdict, code, summary = overall(results, hard, saturated, settings.inconclusive_fails)
    return GateResult(
        verdict=verdict, exit_code=code, summary=summary,
        baseline=_side(labels[0], base_r, toggles), current=_side(labels[1], cur_r, toggles),
        mismatches=list(differ), allowed_mismatch=bool(differ) and allow_mismatch, method=method,
        misrate=settings.misrate, block_s=settings.block_s, resamples=settings.resamples,
        seed=settings.seed, checks=results, hard_failures=hard, cannot_judge=saturated,
        inconclusive_fails=settings.inconclusive_fails)
