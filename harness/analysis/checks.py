"""The gate's checks: every comparison both sides can answer, each with its effect. Pure.

`Checks` walks a baseline's runs and the current ones and collects a `Found`
per check both can answer (an effect with its interval, from `blocks`,
`buckets`, `rounds` or `stats`), or the reason one side cannot. What the
checks are, and why each is resampled as it is, is `harness.analysis.compare`'s
docstring; deciding them against the policy (`compare.decide`) is its code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from harness.analysis import blocks as blk
from harness.analysis import buckets as bk
from harness.analysis import rounds as rd
from harness.analysis import stats
from harness.model.gate import Tolerance
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
