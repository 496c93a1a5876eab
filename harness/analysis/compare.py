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
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from harness.analysis import blocks as blk
from harness.analysis import buckets as bk
from harness.analysis import rounds as rd
from harness.analysis import stats
from harness.analysis import verdicts as vd
from harness.errors import ConfigError
from harness.model.gate import CheckResult, GateResult, HardFailure, Side, Tolerance
from harness.model.intervals import IntervalLog
from harness.model.result import RunResult
from harness.model.server import ServerSample

LATENCY = ((50.0, "p50"), (95.0, "p95"), (99.0, "p99"))
SCRAPE_S = 2.0
SERVER_QUANTILES = (
    ("upstream_p95", "elevenlabs_upstream_request_duration_seconds", "ElevenLabs"),
    ("query_p95", "db_query_duration_seconds", None),
    ("pool_wait_p95", "db_pool_acquire_seconds", "pool"),
    ("freshness_p95", "kpi_view_change_to_visible_seconds", "KPI view"),
)
"""The p95 checks of the service's own histograms: (policy kind, histogram, subject;
None: one check per series label, the query name). The ElevenLabs attempts are
summed over outcomes, as `UpstreamStats.latency_ms` is."""
US_PER_S = 1e6


@dataclass(frozen=True)
class RunData:
    """One run: its record and its per-window histograms (None for a v1 record)."""

    result: RunResult
    log: IntervalLog | None


@dataclass(frozen=True)
class GateSettings:
    """The policy as the gate needs it (`harness.model.policy` builds it from policy.toml)."""

    tolerance: Callable[[str, str], Tolerance]
    """(policy name, subject) -> tolerance, overrides resolved. The policy name is p50,
    p95 or p99 for latency (subject: the endpoint), else the check's kind (subject: the
    endpoint, cache or "ElevenLabs")."""
    advisory: Callable[[str, str], bool] = lambda name, subject: False
    misrate: float = 0.01
    block_s: int = 5
    resamples: int = stats.DEFAULT_RESAMPLES
    seed: int = 0
    min_blocks: int = stats.MIN_BLOCKS
    inconclusive_fails: bool = False
    error_rate_max: float = 0.05
    agreement_max: float = 0.01
    tenant_leaks_max: int = 0


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


def _measured(run: RunData) -> list[int]:
    w = run.result.windows
    return [s.t for s in w.seconds if s.phase == "measured"] if w else []


def _rate(run: RunData, num: Callable, den: Callable) -> tuple[list[float], list[float]]:
    w = run.result.windows
    seconds = [s for s in w.seconds if s.phase == "measured"] if w else []
    return [num(s) for s in seconds], [den(s) for s in seconds]


def _blocked(side: Sequence[tuple[list[float], list[float]]], block: int):
    nums, dens = [], []
    for num, den in side:
        n, d, _ = stats.rate_blocks(num, den, block)
        nums.extend(n)
        dens.extend(d)
    return nums, dens


def _series(run: RunData) -> list[ServerSample]:
    server = run.result.server
    return [r for r in server.series if r.phase == "measured"] if server else []


@dataclass(frozen=True)
class Found:
    """A check both sides can answer: what it is, its policy key, and its effect."""

    kind: str
    subject: str
    policy: str
    """The policy's name for it: p50/p95/p99 for latency, else the kind."""
    unit: str
    effect: stats.Effect | None
    why_not: str = ""

    @property
    def name(self) -> str:
        return f"{self.policy} {self.subject}"


class Checks:
    """Collects every check both sides can answer."""

    def __init__(self, base: Sequence[RunData], cur: Sequence[RunData],
                 settings: GateSettings) -> None:
        self.base, self.cur, self.s = base, cur, settings
        self.found: list[Found] = []

    def collect(self) -> list[Found]:
        """Every check both sides can answer, in a stable order."""
        self.latency()
        self.client_rates()
        self.server_rates()
        self.server_quantiles()
        return self.found

    def add(self, kind: str, subject: str, unit: str, effect: stats.Effect | None,
            why_not: str = "", policy: str | None = None) -> None:
        self.found.append(Found(kind, subject, policy or kind, unit, effect, why_not))

    def latency(self) -> None:
        every = [*self.base, *self.cur]
        shared = sorted(set.intersection(*(set(r.result.endpoints) for r in every)))
        keys = [k for k in shared if all(r.result.endpoints[k].count for r in every)]
        for key in shared:
            if key not in keys:  # only warm-up or cool-down requests on some run
                for _, name in LATENCY:
                    self.add("latency", key, "ms", None, policy=name,
                             why_not="no request measured on one side")
        rounds = min(len(self.base), len(self.cur))
        if rounds >= stats.MIN_ROUNDS:
            for key in keys:
                for p, name in LATENCY:
                    # in µs, as the block bootstrap's HDR values (`_natural` shows ms)
                    values = [[1000.0 * getattr(r.result.endpoints[key].latency_ms, name)
                               for r in side] for side in (self.base, self.cur)]
                    if all(v for side in values for v in side):
                        self.add("latency", key, "ms",
                                 rd.hodges_lehmann(values[0], values[1]), policy=name)
            return
        if any(r.log is None for r in [*self.base, *self.cur]):
            for key in keys:
                for _, name in LATENCY:
                    self.add("latency", key, "ms", None, policy=name, why_not=(
                        "a run has no interval log (schema_version 1): run 5+ rounds"))
            return
        pairs = []
        for key in keys:
            sides = [[blk.window_counts(r.log.encoded(key, t) for t in _measured(r))
                      for r in side] for side in (self.base, self.cur)]
            pairs.append(blk.block_pair(sides[0], sides[1], self.s.block_s))
        effects = stats.bootstrap_pairs(pairs, [p for p, _ in LATENCY], self.s.resamples,
                                        self.s.seed) if pairs else []
        for key, by_p in zip(keys, effects, strict=True):
            for p, name in LATENCY:
                self.add("latency", key, "ms", by_p[p], policy=name)

    def rate(self, kind: str, subject: str, get: Callable[[RunData], tuple[list, list]],
             block: int) -> None:
        """A ratio of sums over blocks; its scale follows the policy's tolerance: a relative
        tolerance compares the log of current / baseline, an absolute one the difference."""
        sides = [_blocked([get(r) for r in side], block) for side in (self.base, self.cur)]
        if not all(sum(d) > 0 for _, d in sides):
            return  # nothing to compare on one side (e.g. a scenario without writes)
        scale: stats.Scale = "log_ratio" if self.s.tolerance(kind, subject).relative \
            else "difference"
        unit = "ratio" if scale == "log_ratio" else "%"
        self.add(kind, subject, unit, stats.bootstrap_rates(sides[0], sides[1], scale,
                                                            self.s.resamples, self.s.seed))

    def client_rates(self) -> None:
        keys = sorted(set.intersection(*(set(r.result.endpoints) for r in [*self.base,
                                                                         *self.cur])))
        b = self.s.block_s
        for key in keys:
            def errors(run: RunData, key: str = key) -> tuple[list, list]:
                return _rate(run, lambda s: sum(s.endpoints[key].failures.values())
                             if key in s.endpoints else 0,
                             lambda s: s.endpoints[key].count if key in s.endpoints else 0)
            self.rate("error_rate", key, errors, b)
        self.rate("throughput_shortfall", "paced tasks",
                  lambda r: _rate(r, lambda s: max(s.tasks_intended - s.tasks_started, 0),
                                  lambda s: s.tasks_intended), b)

    def server_rates(self) -> None:
        rows = max(1, round(self.s.block_s / SCRAPE_S))
        caches = sorted(set.intersection(*({c for row in _series(r) for c in row.cache_hits}
                                           for r in [*self.base, *self.cur])))
        for name in caches:
            def hits(run: RunData, name: str = name) -> tuple[list, list]:
                rs = _series(run)
                good = [r.cache_hits.get(name, 0) + r.cache_stale_hits.get(name, 0) for r in rs]
                return good, [g + r.cache_misses.get(name, 0) for g, r in zip(good, rs)]
            self.rate("cache_hit_ratio", name, hits, rows)

        def upstream(num: Callable[[ServerSample], float], den: Callable[[ServerSample], float]):
            return lambda run: ([num(r) for r in _series(run)], [den(r) for r in _series(run)])
        self.rate("upstream_retry_rate", "ElevenLabs", upstream(
            lambda r: sum(r.upstream_retries.values()), lambda r: r.upstream_attempts), rows)
        self.rate("upstream_retry_amplification", "ElevenLabs", upstream(
            lambda r: r.upstream_attempts, lambda r: r.upstream_requests), rows)
        self.rate("upstream_failure_rate", "ElevenLabs", upstream(
            lambda r: sum(r.upstream_failures.values()), lambda r: r.upstream_attempts), rows)
        self.rate("upstream_fallback_rate", "ElevenLabs", upstream(
            lambda r: sum(v for k, v in r.upstream_fallbacks.items() if k != "live"),
            lambda r: sum(r.upstream_fallbacks.values())), rows)

    def server_quantiles(self) -> None:
        """p95 of the service's histograms (`SERVER_QUANTILES`): a block bootstrap over
        blocks of the 2 s scrape rows' bucket counts (`harness.analysis.buckets`), the
        blocks of every run of a side pooled. Values are carried in µs, as the client
        latencies are, so the outputs read them as ms. Skipped when neither side
        observed anything (no writes: no freshness); inconclusive when one side did not."""
        rows = max(1, round(self.s.block_s / SCRAPE_S))
        every = [*self.base, *self.cur]
        for kind, name, subject in SERVER_QUANTILES:
            labels = [None] if subject else _histogram_labels(every, name)
            for label in labels:
                self._server_quantile(kind, subject or str(label), name, label, rows)

    def _server_quantile(self, kind: str, subject: str, name: str, label: str | None,
                         rows: int) -> None:
        sides = (self.base, self.cur)
        bounds = {b for r in _every_run(sides) if (b := _bounds(r, name)) is not None}
        if len(bounds) > 1:
            self.add(kind, subject, "ms", None,
                     why_not=f"the runs' {name} buckets have different bounds")
            return
        if not bounds:
            return  # no run observed this histogram
        edges = next(iter(bounds))
        counts = [[_histogram_rows(r, name, label, len(edges) + 1) for r in side]
                  for side in sides]
        seen = [any(m.sum() > 0 for m in side) for side in counts]
        if not any(seen):
            return
        for which, runs, ok in zip(("baseline", "current"), sides, seen, strict=True):
            if not ok or not all(_has_histograms(r) for r in runs):
                self.add(kind, subject, "ms", None, why_not=_no_observations(which, runs, name))
                return
        blocks = [bk.block_rows(side, np.asarray(edges) * US_PER_S, rows) for side in counts]
        self.add(kind, subject, "ms", bk.bootstrap_quantile(
            blocks[0], blocks[1], 0.95, self.s.resamples, self.s.seed))


def _every_run(sides: Sequence[Sequence[RunData]]) -> list[RunData]:
    return [r for side in sides for r in side]


def _has_histograms(run: RunData) -> bool:
    """Whether the record kept the series' histograms (older v2 records did not)."""
    return run.result.server is not None and bool(run.result.server.histogram_bounds)


def _bounds(run: RunData, name: str) -> tuple[float, ...] | None:
    server = run.result.server
    found = server.histogram_bounds.get(name) if server else None
    return tuple(found) if found is not None else None


def _histogram_rows(run: RunData, name: str, label: str | None, width: int) -> np.ndarray:
    """Observations per measured series row and bucket of one histogram's series (label
    None: every series summed); zeros for a run that never observed it."""
    series = _series(run)
    out = np.zeros((len(series), width))
    for i, row in enumerate(series):
        by_label = row.histograms.get(name, {})
        for key in ([label] if label is not None else list(by_label)):
            if by_label.get(key):
                out[i] += bk.padded(by_label[key], width)
    return out


def _histogram_labels(runs: Sequence[RunData], name: str) -> list[str]:
    return sorted({key for r in runs for row in _series(r) for key in row.histograms.get(name, {})})


def _no_observations(side: str, runs: Sequence[RunData], name: str) -> str:
    """Why one side cannot answer a histogram's check that the other side can."""
    if not all(_has_histograms(r) for r in runs):
        return (f"a {side} record has no server histograms (recorded before the series "
                f"kept them, or without server metrics): record it again")
    return f"no {name} observations on the {side} side"


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
