"""The benchmark gate: two pytest-benchmark results, benchmark by benchmark, to one verdict. Pure.

The same gate as `harness compare` (`harness.analysis.compare`), fed by
benchmarks instead of runs:

* **The statistic**: per benchmark, the shift of the median round time,
  current / baseline, on the log scale: the Hodges-Lehmann estimate over the
  raw rounds (`stats.data`). pytest-benchmark's rounds are separate calls of
  the same code, so they are the independent samples here (the issue's
  choice): Hodges-Lehmann bounds directly, exact Mann-Whitney counting up to
  2,500 pairs, the large-sample form above (`harness.analysis.rounds`).
  Fewer than 5 rounds a side is `inconclusive` (`verdicts.MIN_ROUNDS`).
* **The verdicts** are the gate's (`compare.decide`): equivalence tests
  against the tolerance, Holm-adjusted across all benchmarks so the
  policy's misrate bounds the whole gate's false-alarm rate, and `overall`
  for the one verdict and exit code.
* **Refused** (a `ConfigError`, exit 2) unless allowed: results from
  different machines (CPU model, cores, Python, OS), as `harness compare`
  refuses runs of different machines. The commits are shown, never refused.
* A benchmark on one side only is an `inconclusive` check saying why (new,
  or not measured this time), never an error; one deselected with `-k` is
  not a check at all (`deselected`).

The tolerance kind `bench` (one default, per-benchmark overrides) belongs in
`harness.model.policy`; until it is there every benchmark gets +15%
(`tolerance`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence

import numpy as np

from harness.analysis import compare
from harness.analysis import rounds as rd
from harness.errors import ConfigError
from harness.model import policy as pol
from harness.model.bench import Benchmark, BenchmarkRun
from harness.model.gate import CheckResult, GateResult, Side, Tolerance

KIND = "benchmark"
"""`CheckResult.kind` of a benchmark check."""
POLICY_KIND = "bench"
"""The policy's tolerance kind for benchmarks (`[tolerances] bench = "+15%"`)."""
DEFAULT_TOLERANCE = Tolerance(limit=0.15, relative=True, higher_is_worse=True, text="+15%")
METHOD = "Hodges-Lehmann over benchmark rounds (rounds as independent samples)"


# ---------------------------------------------------------------- the policy


def tolerance(policy: pol.Policy, subject: str) -> Tolerance:
    """A benchmark's tolerance: the policy's `bench` kind (with its per-benchmark
    overrides) once `harness.model.policy` has it; until then +15% for every benchmark.

    FALLBACK, marked: remove the branch when `bench` is in `pol.KINDS`."""
    if POLICY_KIND in pol.KINDS:
        return pol.tolerance_for(policy, POLICY_KIND, subject)
    return DEFAULT_TOLERANCE


def advisory(policy: pol.Policy, subject: str) -> bool:
    """Whether a benchmark's check is advisory (only once the policy has the `bench` kind)."""
    if POLICY_KIND in pol.KINDS:
        return pol.is_advisory(policy, POLICY_KIND, subject)
    return False


def settings_from(policy: pol.Policy) -> compare.GateSettings:
    """What the gate needs of a policy, for benchmarks."""
    return compare.GateSettings(
        tolerance=lambda kind, subject: tolerance(policy, subject),
        advisory=lambda kind, subject: advisory(policy, subject),
        misrate=policy.gate.misrate, block_s=policy.gate.block_s,
        resamples=policy.gate.resamples, seed=policy.gate.seed,
        min_blocks=policy.gate.min_blocks, inconclusive_fails=policy.inconclusive_fails)


# ---------------------------------------------------------------- the checks


UNITS = ((1.0, "s", 1.0), (1e-3, "ms", 1e3), (1e-6, "µs", 1e6), (0.0, "ns", 1e9))
"""(seconds at least, unit, factor): how a benchmark's times are shown."""


def display_unit(seconds: float) -> tuple[str, float]:
    """The unit a time of this size reads best in, and seconds' factor to it."""
    for floor, unit, factor in UNITS:
        if seconds >= floor:
            return unit, factor
    return "ns", 1e9


def subjects(*runs: BenchmarkRun) -> dict[str, str]:
    """fullname -> the name a check shows: the test's name, or its node id when two
    benchmarks of these results share a name."""
    names: dict[str, set[str]] = {}
    for run in runs:
        for b in run.benchmarks:
            names.setdefault(b.name, set()).add(b.fullname)
    return {full: name if len(fulls) == 1 else full
            for name, fulls in names.items() for full in fulls}


def timings(b: Benchmark) -> np.ndarray:
    """Seconds per iteration of every round."""
    return np.asarray(b.stats.data, dtype=np.float64)


def deselected(base: BenchmarkRun, cur: BenchmarkRun,
               selected: Collection[str] | None) -> list[str]:
    """Baseline benchmarks this run did not select (`-k`): not checks. `selected` holds the
    node ids pytest selected; None: everything was (no -k)."""
    if selected is None:
        return []
    have = cur.by_fullname()
    return [f for f in base.by_fullname() if f not in have and f not in selected]


def effect(base: np.ndarray, cur: np.ndarray) -> rd.HodgesLehmann:
    """The shift of current vs baseline round times (log ratio), its method named."""
    hl = rd.hodges_lehmann(base, cur, scale="log_ratio")
    how = "normal approximation" if isinstance(hl, rd.LargeHodgesLehmann) \
        else "exact Mann-Whitney bounds"
    return dataclasses.replace(hl, method=f"Hodges-Lehmann over benchmark rounds ({how})")


def found(base: BenchmarkRun, cur: BenchmarkRun, baseline_label: str = "the baseline",
          selected: Collection[str] | None = None) -> list[tuple[str, compare.Found]]:
    """(node id, check) for every benchmark of either side: the baseline's order first,
    then the new ones."""
    b_all, c_all = base.by_fullname(), cur.by_fullname()
    skip = set(deselected(base, cur, selected))
    shown = subjects(base, cur)
    out: list[tuple[str, compare.Found]] = []

    def add(full: str, eff: rd.HodgesLehmann | None, why: str = "") -> None:
        out.append((full, compare.Found(KIND, shown[full], POLICY_KIND, "ms", eff, why)))

    for full, b in b_all.items():
        if full in skip:
            continue
        c = c_all.get(full)
        if c is None:
            add(full, None, f"in {baseline_label}, not measured in this run "
                            f"(skipped, removed or renamed)")
            continue
        tb, tc = timings(b), timings(c)
        if (tb <= 0).any() or (tc <= 0).any():
            add(full, None, "a round timed 0 s (below the timer's resolution): time more "
                            "iterations per round")
            continue
        add(full, effect(tb, tc))
    for full in c_all:
        if full not in b_all:
            add(full, None, f"new: not in {baseline_label}")
    return out


def _median(b: Benchmark | None) -> float | None:
    """The median round, as the effect computes it (exp of the median log)."""
    t = timings(b) if b is not None else np.empty(0)
    return float(np.exp(np.median(np.log(t)))) if len(t) and (t > 0).all() else None


def _shown(result: CheckResult, f: compare.Found, base: Benchmark | None,
           cur: Benchmark | None) -> CheckResult:
    """Values in a unit that fits the benchmark (ns to s), each side's median round.

    `compare.decide` reads `ms` values as microseconds (the histograms' unit); the
    checks go through it as `ms` so its reason text is a relative one, and get their
    values and unit here."""
    mb, mc = _median(base), _median(cur)
    e = f.effect
    if e is not None:
        mb, mc = e.baseline, e.current
    ref = mb if mb is not None else mc
    unit, factor = display_unit(ref if ref is not None else 1.0)
    return result.model_copy(update={
        "unit": unit, "baseline": None if mb is None else mb * factor,
        "current": None if mc is None else mc * factor})


def mismatches(base: BenchmarkRun, cur: BenchmarkRun) -> list[str]:
    """What differs between the machines the results were measured on."""
    a, b = base.machine(), cur.machine()
    return [f"{k}: {a[k]!r} vs {b[k]!r}" for k in a if a[k] != b[k]]


def compare_benchmarks(base: BenchmarkRun, cur: BenchmarkRun, settings: compare.GateSettings,
                       labels: tuple[str, str] = ("baseline", "current"),
                       run_ids: tuple[str, str] = ("baseline", "current"),
                       selected: Collection[str] | None = None,
                       allow_mismatch: bool = False) -> GateResult:
    """The gate's result for `cur` against `base` (ConfigError: a refused comparison)."""
    differ = mismatches(base, cur)
    if differ and not allow_mismatch:
        raise ConfigError("refusing to compare benchmarks measured on different machines: "
                          + "; ".join(differ) + " (--allow-mismatch to compare anyway)")
    pairs = found(base, cur, labels[0], selected)
    checks = [f for _, f in pairs]
    b_all, c_all = base.by_fullname(), cur.by_fullname()
    by_name = {f.name: (full, f) for full, f in pairs}  # decide orders advisory ones last
    results = [_shown(r, by_name[r.name][1], b_all.get(by_name[r.name][0]),
                      c_all.get(by_name[r.name][0])) for r in compare.decide(checks, settings)]
    return gate_of(results, base, cur, settings, labels, run_ids, differ, allow_mismatch)


def gate_of(results: list[CheckResult], base: BenchmarkRun, cur: BenchmarkRun,
            settings: compare.GateSettings, labels: tuple[str, str], run_ids: tuple[str, str],
            differ: Sequence[str] = (), allow_mismatch: bool = False) -> GateResult:
    """Decided checks to the gate's one verdict and exit code (`compare.overall`)."""
    verdict, code, summary = compare.overall(results, [], [], settings.inconclusive_fails)
    if not results:
        summary = "pass: no benchmark to compare"
    return GateResult(
        verdict=verdict, exit_code=code, summary=summary,
        baseline=Side(label=labels[0], run_ids=[run_ids[0]], git_commit=base.git_commit),
        current=Side(label=labels[1], run_ids=[run_ids[1]], git_commit=cur.git_commit),
        mismatches=list(differ), allowed_mismatch=bool(differ) and allow_mismatch,
        method=METHOD, misrate=settings.misrate, block_s=settings.block_s,
        resamples=settings.resamples, seed=settings.seed, checks=results,
        inconclusive_fails=settings.inconclusive_fails)

