"""Each optimization's effect (`harness ablate`): configurations against all-on. Pure.

Input: per round, the run of each configuration measured in it (configuration
name -> `RunData`); one of them, `reference` ("all on"), is what every other
configuration is compared with. Output: per configuration, per metric and
subject, the effect with its 95% interval (`AblationEffect`):

* **p95 per endpoint**: the log ratio configuration / reference of the
  client-side p95, by the gate's block bootstrap over the interval log's
  windows (`checks.Checks.latency`: blocks of `block_s` consecutive one-second
  windows, every endpoint resampled with the same time blocks).
* **throughput**: requests started per measured second, all endpoints together,
  client side; log ratio, block bootstrap of (requests, seconds) per block.
* **DB time per request**: named-query time over requests the service
  counted, from the service's scrape series (2 s rows summed into blocks of
  `round(block_s / 2)` rows); the query time of a row is estimated from its
  `db_query_duration_seconds` buckets, each observation at its bucket's midpoint
  (the highest finite bound for the +Inf bucket): the record keeps buckets,
  not sums, so this is an estimate, good to the buckets' resolution, the same
  estimate on both sides. **DB queries per request** is exact (counts).
* **cache hit ratio per cache**: (hits + stale hits) / lookups of the rows, a
  difference in points, block bootstrap over the same scrape blocks. A cache with
  no lookups in a configuration (it is turned off) has no estimate, and says so.

**Unit of resampling, and why.** Within a run, requests are autocorrelated (a
slow second is followed by slow seconds), so the unit is a block of
consecutive windows (or scrapes), never a request: that is what the gate does
(`harness.analysis.stats`). Across the job, a configuration is paired with the
reference *by round*: the two ran minutes apart in the same round, on clones
of the same dataset, so what the machine did between rounds cancels; round r's
effect d_r and its bootstrap SE are combined over the rounds exactly as
`harness ab`'s gate combines them (`paired.combine`: the mean of the d_r; its SE
from the rounds' own bootstrap SEs, and with `stats.MIN_ROUNDS` (5) rounds or
more also from the spread of the d_r between rounds, the larger of the two). So
with fewer than 5 rounds the interval knows only the noise within runs (blocks),
with 5 or more it also knows what moves from round to round. Intervals are
Student-t on the effect's scale (log for ratios), 95% each, not adjusted for the
many effects in one table: read a single clear effect with that in mind.

The runs must share scenario, load, dataset and machine (`compare.mismatches`);
otherwise the comparison is refused (`ConfigError`) unless allowed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from harness.analysis import checks, paired, stats
from harness.analysis import compare as cmp
from harness.analysis.checks import RunData
from harness.errors import ConfigError
from harness.model.ablation import METRIC_UNITS, AblationEffect
from harness.model.gate import Tolerance
from harness.model.server import ServerSample

CONFIDENCE = 0.95
ALPHA = (1 - CONFIDENCE) / 2
QUERY_HISTOGRAM = "db_query_duration_seconds"
THROUGHPUT_SUBJECT, DB_SUBJECT = "all requests", "named queries"


def _settings(block_s: int, resamples: int, seed: int) -> checks.GateSettings:
    return checks.GateSettings(tolerance=lambda kind, subject: Tolerance(limit=0.1),
                            block_s=block_s, resamples=resamples, seed=seed)


def _measured_rows(run: RunData) -> list[ServerSample]:
    server = run.result.server
    return [r for r in server.series if r.phase == "measured"] if server else []


def _midpoints(bounds: Sequence[float]) -> np.ndarray:
    """Seconds each bucket's observations are taken to last: the bucket's midpoint, the
    highest finite bound for the +Inf bucket."""
    b = np.asarray(bounds, dtype=np.float64)
    lower = np.concatenate([[0.0], b[:-1]])
    return np.concatenate([(lower + b) / 2, b[-1:]])


def db_rows(run: RunData) -> tuple[list[float], list[float], list[float]]:
    """Per measured scrape row: (estimated query ms, queries, requests the service counted)."""
    server = run.result.server
    bounds = server.histogram_bounds.get(QUERY_HISTOGRAM) if server else None
    mids = _midpoints(bounds) * 1000.0 if bounds else None
    ms, queries, requests = [], [], []
    for row in _measured_rows(run):
        series = row.histograms.get(QUERY_HISTOGRAM, {})
        total_ms = total_n = 0.0
        for counts in series.values():
            c = np.asarray(counts, dtype=np.float64)
            total_n += float(c.sum())
            if mids is not None and len(c):
                total_ms += float(c @ mids[:len(c)])
        ms.append(total_ms)
        queries.append(total_n)
        requests.append(float(sum(row.requests.values())))
    return ms, queries, requests


def _client_rows(run: RunData) -> tuple[list[float], list[float]]:
    """Per measured second: (requests started, 1 second)."""
    w = run.result.windows
    seconds = [s for s in w.seconds if s.phase == "measured"] if w else []
    return [float(sum(c.count for c in s.endpoints.values())) for s in seconds], \
        [1.0] * len(seconds)


def _blocks(rows: tuple[Sequence[float], Sequence[float]], size: int):
    num, den, _ = stats.rate_blocks(rows[0], rows[1], size)
    return num, den


def _rate(ref: tuple[Sequence[float], Sequence[float]],
          cur: tuple[Sequence[float], Sequence[float]], size: int, scale: stats.Scale,
          s: checks.GateSettings, nothing: str) -> stats.Effect | str:
    """A ratio of sums over blocks of `size` rows (an Effect), or why there is none."""
    if not (sum(ref[1]) > 0 and sum(cur[1]) > 0) or (
            scale == "log_ratio" and not (sum(ref[0]) > 0 and sum(cur[0]) > 0)):
        return nothing
    a, b = _blocks(ref, size), _blocks(cur, size)
    if min(len(a[0]), len(b[0])) < 2:  # a point estimate from every row, no interval
        pa, pb = sum(ref[0]) / sum(ref[1]), sum(cur[0]) / sum(cur[1])
        est = math.log(pb / pa) if scale == "log_ratio" else pb - pa
        return stats.Effect(scale, est, math.inf, 1.0, pa, pb, len(a[0]), len(b[0]),
                            method=f"too short to bound: fewer than 2 blocks of {size} rows")
    return stats.bootstrap_rates(a, b, scale, s.resamples, s.seed)


def _caches(run: RunData) -> set[str]:
    return {c for row in _measured_rows(run)
            for c in (*row.cache_hits, *row.cache_misses, *row.cache_stale_hits)}


def _cache_rows(run: RunData, name: str) -> tuple[list[float], list[float]]:
    rows = _measured_rows(run)
    good = [r.cache_hits.get(name, 0.0) + r.cache_stale_hits.get(name, 0.0) for r in rows]
    return good, [g + r.cache_misses.get(name, 0.0) for g, r in zip(good, rows)]


Key = tuple[str, str]
"""(metric, subject)."""


def round_effects(ref: RunData, cur: RunData,
                  s: checks.GateSettings) -> dict[Key, stats.Effect | str]:
    """One round: every metric of `cur` against `ref` (an Effect, or why there is none)."""
    out: dict[Key, stats.Effect | str] = {}
    found = checks.Checks([ref], [cur], s)
    found.latency()
    for f in found.found:
        if f.policy == "p95":
            out[("p95", f.subject)] = f.effect if f.effect is not None else f.why_not
    for key in set(ref.result.endpoints) ^ set(cur.result.endpoints):
        out[("p95", key)] = "requested in one configuration only"
    rows = max(1, round(s.block_s / checks.SCRAPE_S))
    out[("throughput", THROUGHPUT_SUBJECT)] = _rate(
        _client_rows(ref), _client_rows(cur), s.block_s, "log_ratio", s, "no measured requests")
    (rm, rq, rr), (cm, cq, cr) = db_rows(ref), db_rows(cur)
    for metric, a, b in (("db_time", rm, cm), ("db_queries", rq, cq)):
        out[(metric, DB_SUBJECT)] = _rate((a, rr), (b, cr), rows, "log_ratio", s,
                                          "no named query or no request counted by the service")
    ref_caches, cur_caches = _caches(ref), _caches(cur)
    for name in sorted(ref_caches | cur_caches):
        out[("cache_hit_ratio", name)] = _rate(
            _cache_rows(ref, name), _cache_rows(cur, name), rows, "difference", s,
            "no lookups of this cache in one configuration") \
            if name in ref_caches and name in cur_caches else \
            "no lookups of this cache in one configuration"
    return out


def _reference_alone(key: Key, refs: Sequence[RunData]) -> float | None:
    """The reference's own value where the other configuration has none to compare (a
    cache it turned off, an endpoint it did not request): the mean over the rounds."""
    metric, subject = key
    values: list[float] = []
    for ref in refs:
        if metric == "cache_hit_ratio":
            good, lookups = _cache_rows(ref, subject)
            if sum(lookups) > 0:
                values.append(100.0 * sum(good) / sum(lookups))
        elif metric == "p95" and subject in ref.result.endpoints:
            p95 = ref.result.endpoints[subject].latency_ms.p95
            if p95 is not None:
                values.append(p95)
    return float(np.mean(values)) if values else None


def _model(config: str, key: Key, effects: list[stats.Effect], why: list[str],
           rounds: int, reference: float | None = None) -> AblationEffect:
    metric, subject = key
    unit = METRIC_UNITS[metric]
    ratio = metric != "cache_hit_ratio"
    common = {"config": config, "metric": metric, "subject": subject, "unit": unit,
              "scale": "ratio" if ratio else "points", "rounds": rounds}
    if why or not effects:
        return AblationEffect(**common, reference=reference, value=None, change=None, low=None,
                              high=None, why_not="; ".join(why) or "not measured")
    e = paired.combine(effects)
    lo, hi = e.interval(ALPHA) if math.isfinite(e.se) else (math.nan, math.nan)
    natural = (lambda v: v / 1000.0) if metric == "p95" else \
        (lambda v: v * 100.0) if not ratio else (lambda v: v)

    def finite(v: float) -> float | None:
        return float(v) if math.isfinite(v) else None

    if ratio:
        change, lo, hi = math.exp(e.estimate), math.exp(lo), math.exp(hi)
    else:
        change, lo, hi = e.estimate * 100, lo * 100, hi * 100
    return AblationEffect(**common, reference=finite(natural(e.baseline)),
                          value=finite(natural(e.current)), change=finite(change),
                          low=finite(lo), high=finite(hi), method=e.method)


def ablation(rounds: Sequence[Mapping[str, RunData]], reference: str = "all on",
             block_s: int = 5, resamples: int = stats.DEFAULT_RESAMPLES, seed: int = 0,
             allow_mismatch: bool = False) -> list[AblationEffect]:
    """Every configuration but `reference` against it, paired by round (see the module).

    `rounds[i]` maps configuration name -> its run in round i+1; a configuration (or the
    reference) missing from a round leaves that round out of its pairs. Configurations
    come out in their order of first appearance."""
    every = [run.result for r in rounds for run in r.values()]
    if not every:
        raise ConfigError("an ablation needs at least one measured run")
    differ = cmp.mismatches(every[:1], every[1:]) if len(every) > 1 else []
    if differ and not allow_mismatch:
        raise ConfigError("refusing to compare runs that differ in " + "; ".join(differ)
                          + " (--allow-mismatch to compare anyway)")
    s = _settings(block_s, resamples, seed)
    names = list(dict.fromkeys(n for r in rounds for n in r if n != reference))
    out: list[AblationEffect] = []
    for name in names:
        numbers = [i + 1 for i, r in enumerate(rounds) if reference in r and name in r]
        pairs = [(rounds[n - 1][reference], rounds[n - 1][name]) for n in numbers]
        per_round = [round_effects(a, b, s) for a, b in pairs]
        keys = list(dict.fromkeys(k for found in per_round for k in found))
        order = {m: i for i, m in enumerate(METRIC_UNITS)}
        keys.sort(key=lambda k: (order[k[0]], k[1]))
        for key in keys:
            effects = [f[key] for f in per_round if isinstance(f.get(key), stats.Effect)]
            missing: dict[str, list[int]] = {}
            for n, f in zip(numbers, per_round, strict=True):
                if not isinstance(f.get(key), stats.Effect):
                    missing.setdefault(f.get(key) or "not measured", []).append(n)
            why = [f"{text} (round {', '.join(map(str, ns))})" for text, ns in missing.items()]
            alone = _reference_alone(key, [a for a, _ in pairs]) if why else None
            out.append(_model(name, key, effects, why, len(pairs), alone))
    return out


def method(rounds: int, block_s: int) -> str:
    """The record's one-line statement of how the intervals were computed."""
    base = (f"paired by round with all on over {rounds} round(s): block bootstrap over "
            f"{block_s} s blocks of windows (scrapes for server-side metrics) in each round, "
            f"rounds combined as harness ab's gate does")
    return base + ("; between-round spread included" if rounds >= stats.MIN_ROUNDS else
                   f"; fewer than {stats.MIN_ROUNDS} rounds: within-run noise only")
