"""The benchmark gate: two sets of pytest-benchmark sessions, benchmark by benchmark, to one
verdict. Pure.

The same gate as `harness compare` (`harness.analysis.compare`), fed by
benchmarks instead of runs:

* **The unit is the session** (`MIN_SESSIONS` or more a side): per
  benchmark, each session's median round time (pytest-benchmark's
  `stats.median`, the median of its raw rounds), and the shift current /
  baseline as the exact Hodges-Lehmann estimate over those per-session
  medians on the log scale (`rounds.hodges_lehmann`: the median of the m * n
  pairwise log differences, distribution-free bounds from the exact
  Mann-Whitney null distribution). Rounds within one session share that
  session's machine state (caches, frequency, neighbours), and whole
  sessions move (measured: -30% to +73% for the cache micro-benchmarks from
  one session to the next), so only sessions are independent samples of
  "this build on this machine".
* **Fewer than `MIN_SESSIONS` on a side**: rounds as the samples (the old
  path, pytest-benchmark's raw rounds of every session of a side pooled),
  Hodges-Lehmann with the large-sample form above 2,500 pairs. The gate's
  `method` and `summary` say so: it ignores session-to-session variation and
  is overconfident across sessions (on this machine 5 of 6 A/A gates of
  single sessions said `regressed`). It needs the raw rounds on both sides
  (`BenchSet.raw_rounds`), else the comparison is refused (`plan`).
* **How many sessions**: with N vs N sessions the exact test's smallest
  one-sided p-value is 1 / C(2N, N); Holm's first level is misrate / checks.
  5 vs 5 (1/252) cannot decide anything among 3 or more benchmarks at
  misrate 0.01; 7 vs 7 (1/3432) can decide up to 34 (`sessions_needed`),
  the default (`DEFAULT_SESSIONS`). An undecided check says how many more
  sessions a side would decide it (`sessions_advice`: from the spread of the
  session medians, at least what lets the exact test reach the check's
  level).
* **The verdicts** are the gate's (`compare.decide`): equivalence tests
  against the policy's `bench` tolerance (`[benchmarks."NAME"]` overrides),
  Holm-adjusted across all benchmarks so the policy's misrate bounds the
  whole gate's false-alarm rate, and `overall` for the one verdict and exit
  code.
* **Refused** (a `ConfigError`, exit 2) unless allowed: sessions measured on
  different machines (CPU model, cores, Python, OS), as `harness compare`
  refuses runs of different machines. The commits are shown, never refused.
* A benchmark on one side only is an `inconclusive` check saying why (new,
  or not measured this time), never an error; one deselected with `-k` is
  not a check at all (`deselected`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Collection, Sequence
from typing import Literal

import numpy as np
from scipy import special

from harness.analysis import checks, compare
from harness.analysis import rounds as rd
from harness.analysis import verdicts as vd
from harness.errors import ConfigError
from harness.model import policy as pol
from harness.model.bench import Benchmark, BenchmarkRun, BenchSet, as_set
from harness.model.gate import CheckResult, GateResult, Side, Tolerance

KIND = "benchmark"
"""`CheckResult.kind` of a benchmark check."""
POLICY_KIND = "bench"
"""The policy's tolerance kind for benchmarks (`[tolerances] bench = "+15%"`)."""
MIN_SESSIONS = 5
"""Sessions a side from which the session is the unit (below: rounds as samples)."""
DEFAULT_SESSIONS = 7
"""`harness bench --sessions`: the fewest that can decide the whole suite (12 benchmarks) at
misrate 0.01 (`sessions_needed(12, 0.01)`)."""

POWER_Z = float(special.ndtri(0.9))
"""`sessions_advice` asks for the interval to clear the tolerance by this many standard
errors more: about a 90% chance (one side binding; 80% when both do, for a shift near 0)
that the advised sessions decide, if the true shift is the estimate."""
MAX_ADVISED = 1000
"""More sessions a side than this is advised as "more than": widen the tolerance instead."""

Mode = Literal["sessions", "rounds"]
SESSIONS_METHOD = "Hodges-Lehmann over per-session medians (the session as the unit, " \
                  "{nb} vs {nc} sessions; exact distribution-free bounds)"
ROUNDS_METHOD = "Hodges-Lehmann over benchmark rounds as independent samples (fallback: " \
                "{nb} vs {nc} sessions, fewer than {min} a side; ignores session-to-session " \
                "variation, so it is overconfident across sessions)"
ROUNDS_CAVEAT = "rounds as samples ({nb} vs {nc} sessions, fewer than {min} a side): " \
                "ignores session-to-session variation"


# ---------------------------------------------------------------- the policy


def settings_from(policy: pol.Policy) -> checks.GateSettings:
    """What the gate needs of a policy, for benchmarks: the `bench` kind's tolerance and
    advisory flag, `[benchmarks."NAME"]` overrides resolved (`compare.decide` calls them
    with the check's policy kind, `bench`, and its subject, the test's name)."""
    return checks.GateSettings(
        tolerance=lambda kind, subject: pol.tolerance_for(policy, kind, subject),
        advisory=lambda kind, subject: pol.is_advisory(policy, kind, subject),
        misrate=policy.gate.misrate, block_s=policy.gate.block_s,
        resamples=policy.gate.resamples, seed=policy.gate.seed,
        min_blocks=policy.gate.min_blocks, inconclusive_fails=policy.inconclusive_fails)


# ---------------------------------------------------------------- sessions


def min_p(sessions: int) -> float:
    """The smallest one-sided p-value of the exact test with `sessions` vs `sessions`."""
    return 1.0 / math.comb(2 * sessions, sessions)


def sessions_needed(checks: int, misrate: float) -> int:
    """The fewest sessions a side (at least `MIN_SESSIONS`) whose smallest p-value passes
    Holm's first level (misrate / checks): below it no check can be decided."""
    n = MIN_SESSIONS
    while min_p(n) * max(checks, 1) >= misrate:
        n += 1
    return n


def sessions_advice(base: np.ndarray, cur: np.ndarray, estimate: float, tolerance: Tolerance,
                    level: float) -> str:
    """How many more sessions a side would decide an undecided check, as its advice.

    `base`, `cur`: the sessions' medians (seconds); `estimate`: the shift on the log scale;
    `level`: the one-sided level the check was tested at. The smallest x with (a) the
    exact test's smallest p-value, 1 / C(m + n + 2x, m + x), below `level`, (b) at least
    `MIN_SESSIONS` a side, and (c) the estimate's distance to the tolerance at least
    (z_level + `POWER_Z`) standard errors of Hodges-Lehmann (normal theory:
    sd * sqrt(1/(m+x) + 1/(n+x)) * sqrt(pi/3)): an interval that just reaches the tolerance
    would decide only half the time, or (for "pass", both sides binding) hardly ever. sd
    is the pooled standard deviation of the log session medians (not a MAD: a session
    that moved is the noise to be averaged, not an outlier to be ignored)."""
    lb, lc = np.log(base), np.log(cur)
    nb, nc = len(lb), len(lc)
    margin = vd.Tolerance(tolerance.limit, tolerance.relative, tolerance.higher_is_worse).margin()
    distance = abs(margin - abs(estimate))
    dof = nb + nc - 2
    sd = math.sqrt((float(((lb - lb.mean()) ** 2).sum()) + float(((lc - lc.mean()) ** 2).sum()))
                   / dof) if dof > 0 else math.nan
    z = float(special.ndtri(1 - level)) if 0 < level < 0.5 else math.inf
    pct = math.expm1(sd) * 100 if math.isfinite(sd) else math.nan
    spread = f"; the session medians' spread: {pct:.{0 if pct >= 10 else 1}f}% sd" \
        if math.isfinite(sd) else ""

    def decides(x: int) -> bool:
        if min(nb, nc) + x < MIN_SESSIONS or 1 / math.comb(nb + nc + 2 * x, nb + x) >= level:
            return False
        if not math.isfinite(sd):
            return True  # too few sessions to know their spread: the floor alone
        se = sd * math.sqrt(1 / (nb + x) + 1 / (nc + x)) * math.sqrt(math.pi / 3)
        return (z + POWER_Z) * se <= distance

    if distance <= 1e-9 * margin or not math.isfinite(z):
        return f"cannot tell how many more sessions would decide (the estimate sits on the " \
               f"tolerance{spread})"
    x = next((x for x in range(1, MAX_ADVISED + 1) if decides(x)), None)
    if x is None:
        return (f"more than {MAX_ADVISED} more sessions a side{spread}: a wider tolerance "
                f"for this benchmark, or a quieter machine")
    at_least = "at least " if not math.isfinite(sd) else "about "
    return f"{at_least}{x} more session{'s' if x != 1 else ''} a side{spread}"


def mode_of(base_sessions: int, cur_sessions: int) -> Mode:
    """The unit: sessions with `MIN_SESSIONS` or more a side, else rounds."""
    return "sessions" if min(base_sessions, cur_sessions) >= MIN_SESSIONS else "rounds"


def plan(base: BenchSet, cur_sessions: int, cur_raw: bool = True,
         baseline_label: str = "the baseline") -> Mode:
    """The mode a comparison with `cur_sessions` will use; ConfigError when it cannot (rounds
    mode without the raw rounds of a side), so the CLI refuses before running."""
    mode = mode_of(len(base.sessions), cur_sessions)
    if mode == "rounds":
        for label, n, raw in ((baseline_label, len(base.sessions), base.raw_rounds),
                              ("this run", cur_sessions, cur_raw)):
            if not raw:
                raise ConfigError(
                    f"{label} holds {n} session(s) without raw rounds, and with fewer than "
                    f"{MIN_SESSIONS} sessions a side the gate compares rounds: run "
                    f"--sessions {MIN_SESSIONS} or more against it (or store it with "
                    f"--keep-data)")
    return mode


def session_median(b: Benchmark) -> float:
    """One session's value of a benchmark: its median round time (seconds per iteration)."""
    return float(np.median(b.stats.data)) if b.stats.data else float(b.stats.median)


def values(side: BenchSet, full: str, mode: Mode) -> np.ndarray:
    """A benchmark's samples on one side: per-session medians, or every session's rounds."""
    held = [s.by_fullname()[full] for s in side.sessions if full in s.by_fullname()]
    if mode == "sessions":
        return np.asarray([session_median(b) for b in held], dtype=np.float64)
    if not all(b.stats.data is not None for b in held):
        raise ConfigError(f"{full}: no raw rounds to compare as samples")
    return np.concatenate([np.asarray(b.stats.data, dtype=np.float64) for b in held]) \
        if held else np.empty(0)


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


def deselected(base: BenchSet | BenchmarkRun, cur: BenchSet | BenchmarkRun,
               selected: Collection[str] | None) -> list[str]:
    """Baseline benchmarks this run did not select (`-k`): not checks. `selected` holds the
    node ids pytest selected; None: everything was (no -k)."""
    if selected is None:
        return []
    have = set(as_set(cur).fullnames())
    return [f for f in as_set(base).fullnames() if f not in have and f not in selected]


def effect(base: np.ndarray, cur: np.ndarray, mode: Mode) -> rd.HodgesLehmann:
    """The shift of current vs baseline (log ratio), its method named."""
    hl = rd.hodges_lehmann(base, cur, scale="log_ratio")
    how = "normal approximation" if isinstance(hl, rd.LargeHodgesLehmann) \
        else "exact Mann-Whitney bounds"
    what = (f"per-session medians, {len(base)} vs {len(cur)} sessions" if mode == "sessions"
            else f"benchmark rounds as samples, {len(base)} vs {len(cur)} rounds")
    return dataclasses.replace(hl, method=f"Hodges-Lehmann over {what} ({how})")


def found(base: BenchSet, cur: BenchSet, mode: Mode, baseline_label: str = "the baseline",
          selected: Collection[str] | None = None) -> list[tuple[str, checks.Found]]:
    """(node id, check) for every benchmark of either side: the baseline's order first,
    then the new ones."""
    b_all, c_all = base.fullnames(), set(cur.fullnames())
    skip = set(deselected(base, cur, selected))
    shown = subjects(*base.sessions, *cur.sessions)
    out: list[tuple[str, checks.Found]] = []

    def add(full: str, eff: rd.HodgesLehmann | None, why: str = "") -> None:
        out.append((full, checks.Found(KIND, shown[full], POLICY_KIND, "ms", eff, why)))

    for full in b_all:
        if full in skip:
            continue
        if full not in c_all:
            add(full, None, f"in {baseline_label}, not measured in this run "
                            f"(skipped, removed or renamed)")
            continue
        tb, tc = values(base, full, mode), values(cur, full, mode)
        if (tb <= 0).any() or (tc <= 0).any():
            what = "a session's median round" if mode == "sessions" else "a round"
            add(full, None, f"{what} timed 0 s (below the timer's resolution): time more "
                            f"iterations per round")
            continue
        add(full, effect(tb, tc, mode))
    for full in cur.fullnames():
        if full not in b_all:
            add(full, None, f"new: not in {baseline_label}")
    return out


def _center(side: BenchSet, full: str, mode: Mode) -> float | None:
    """A side's median (of session medians, or of rounds), as the effect computes it."""
    if full not in side.fullnames():
        return None
    t = values(side, full, mode)
    return float(np.exp(np.median(np.log(t)))) if len(t) and (t > 0).all() else None


def _shown(result: CheckResult, f: checks.Found, base: BenchSet, cur: BenchSet, full: str,
           mode: Mode) -> CheckResult:
    """Values in a unit that fits the benchmark (ns to s), each side's median; an undecided
    check's advice in sessions when the session is the unit (`sessions_advice`).

    `compare.decide` reads `ms` values as microseconds (the histograms' unit); the
    checks go through it as `ms` so its reason text is a relative one, and get their
    values and unit here."""
    e = f.effect
    mb, mc = (e.baseline, e.current) if e is not None else \
        (_center(base, full, mode), _center(cur, full, mode))
    ref = mb if mb is not None else mc
    unit, factor = display_unit(ref if ref is not None else 1.0)
    advice = result.advice
    if mode == "sessions" and e is not None and result.verdict == "inconclusive" \
            and result.confidence is not None:
        advice = sessions_advice(values(base, full, mode), values(cur, full, mode), e.estimate,
                                 result.tolerance, (1 - result.confidence) / 2)
    return result.model_copy(update={
        "unit": unit, "baseline": None if mb is None else mb * factor,
        "current": None if mc is None else mc * factor, "advice": advice})


def mismatches(base: BenchSet | BenchmarkRun, cur: BenchSet | BenchmarkRun) -> list[str]:
    """What differs between the machines the sessions were measured on (within or across
    the sides)."""
    b_set, c_set = as_set(base), as_set(cur)
    b_m = [s.machine() for s in b_set.sessions]
    c_m = [s.machine() for s in c_set.sessions]
    out = []
    for key in b_m[0]:
        bv = list(dict.fromkeys(m[key] for m in b_m))
        cv = list(dict.fromkeys(m[key] for m in c_m))
        if len({*bv, *cv}) > 1:
            out.append(f"{key}: {' / '.join(map(repr, bv))} vs {' / '.join(map(repr, cv))}")
    return out


def compare_benchmarks(base: BenchSet | BenchmarkRun, cur: BenchSet | BenchmarkRun,
                       settings: checks.GateSettings,
                       labels: tuple[str, str] = ("baseline", "current"),
                       run_ids: tuple[str, str] = ("baseline", "current"),
                       selected: Collection[str] | None = None,
                       allow_mismatch: bool = False) -> GateResult:
    """The gate's result for `cur` against `base` (ConfigError: a refused comparison)."""
    base, cur = as_set(base), as_set(cur)
    differ = mismatches(base, cur)
    if differ and not allow_mismatch:
        raise ConfigError("refusing to compare benchmarks measured on different machines: "
                          + "; ".join(differ) + " (--allow-mismatch to compare anyway)")
    mode = plan(base, len(cur.sessions), cur.raw_rounds, labels[0])
    pairs = found(base, cur, mode, labels[0], selected)
    by_name = {f.name: (full, f) for full, f in pairs}  # decide orders advisory ones last
    results = [_shown(r, by_name[r.name][1], base, cur, by_name[r.name][0], mode)
               for r in compare.decide([f for _, f in pairs], settings)]
    return gate_of(results, base, cur, settings, labels, run_ids, mode, differ,
                   allow_mismatch)


def gate_of(results: list[CheckResult], base: BenchSet, cur: BenchSet,
            settings: checks.GateSettings, labels: tuple[str, str], run_ids: tuple[str, str],
            mode: Mode, differ: Sequence[str] = (), allow_mismatch: bool = False) -> GateResult:
    """Decided checks to the gate's one verdict and exit code (`compare.overall`)."""
    verdict, code, summary = compare.overall(results, [], [], settings.inconclusive_fails)
    if not results:
        summary = "pass: no benchmark to compare"
    n = {"nb": len(base.sessions), "nc": len(cur.sessions), "min": MIN_SESSIONS}
    if mode == "rounds":
        summary += f" ({ROUNDS_CAVEAT.format(**n)})"
    method = (SESSIONS_METHOD if mode == "sessions" else ROUNDS_METHOD).format(**n)
    return GateResult(
        verdict=verdict, exit_code=code, summary=summary,
        baseline=Side(label=labels[0], run_ids=[run_ids[0]], git_commit=base.git_commit),
        current=Side(label=labels[1], run_ids=[run_ids[1]], git_commit=cur.git_commit),
        mismatches=list(differ), allowed_mismatch=bool(differ) and allow_mismatch,
        method=method, misrate=settings.misrate, block_s=settings.block_s,
        resamples=settings.resamples, seed=settings.seed, checks=results,
        inconclusive_fails=settings.inconclusive_fails)
