"""Simulated runs with known truth, for the gate's false-alarm and power tests.

The model (one run; every parameter is a field of `Model`):

* **Size.** 60 measured one-second windows; 6 endpoints at 10, 7, 5, 4, 2.5
  and 1.5 requests/s (30 in total, the `mixed` scenario's order of
  magnitude on `small`), Poisson counts per window. The busiest endpoint has
  ~600 requests in a run, the quietest ~90: a p95 of 600 requests rests on
  ~30 of them, so its relative standard error is several percent.
* **Within a window** latency is lognormal: median 6..120 ms per endpoint,
  log-sd 0.45..0.6 (p95/p50 of 2.1..2.7, p99/p50 of 2.9..4, typical of a web
  endpoint in front of PostgreSQL).
* **Drift, not i.i.d.** Each window's log-median moves as AR(1) with rho = 0.9
  per second (a correlation time of ~19 s: a warming cache, a GC cycle, a
  neighbour on the host), as the sum of a machine-wide component (stationary
  sd 0.05, shared by all endpoints) and one per endpoint (sd 0.04). Each run
  starts from the stationary distribution, so two runs of one build differ
  by a few percent, as A/A runs on a shared CI machine do.
* **Bursts.** 3% of windows are 2-4x slower for every endpoint at once
  (a checkpoint, autovacuum, CPU steal), so high percentiles are heavy-tailed
  and clustered in time.
* **Known truth.** `shift={"GET /api/v1/dashboard/overview": 1.25}` multiplies
  every latency of that endpoint by 1.25 (its p50, p95 and p99 by exactly
  that factor, up to HDR's 0.1% buckets).

`simulate` returns per endpoint a list of per-window HdrHistograms (as the
interval log holds them): ~60 ms a run on a quiet 2-core machine, ~50 ms of
it allocating the 360 harness-shaped histograms (188 KB of counts each; the
page faults dominate, recording is ~8 ms, drawing ~1 ms). `simulate_counts`
draws the same numbers (same generator state, same values) but builds
`WindowCounts` directly, the form `harness.analysis.blocks` reads histograms
into: ~2 ms a run, for trial loops of thousands of runs. A test proves the two
agree exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from harness import hdr
from harness.analysis.blocks import Layout, WindowCounts


@dataclass(frozen=True)
class SimEndpoint:
    key: str
    rate: float
    """Requests per second."""
    median_ms: float
    sigma: float
    """Log-sd of latency within a window."""


ENDPOINTS = (
    SimEndpoint("GET /api/v1/dashboard/overview", 10.0, 18.0, 0.50),
    SimEndpoint("GET /api/v1/agents", 7.0, 9.0, 0.45),
    SimEndpoint("GET /api/v1/agents/{agent_id}", 5.0, 6.0, 0.45),
    SimEndpoint("GET /api/v1/activity", 4.0, 25.0, 0.55),
    SimEndpoint("GET /api/v1/dashboard/analytics", 2.5, 120.0, 0.60),
    SimEndpoint("POST /api/v1/calls", 1.5, 40.0, 0.50),
)
BUSIEST = ENDPOINTS[0].key


@dataclass(frozen=True)
class Model:
    seconds: int = 60
    endpoints: tuple[SimEndpoint, ...] = ENDPOINTS
    rho: float = 0.9
    shared_drift_sd: float = 0.05
    own_drift_sd: float = 0.04
    burst_p: float = 0.03
    burst_low: float = 2.0
    burst_high: float = 4.0
    rate_scale: float = 1.0
    """Multiplies every endpoint's rate (a busier run of the same length)."""
    keys: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "keys", tuple(e.key for e in self.endpoints))


MODEL = Model()


def ar1(rng: np.random.Generator, n: int, rho: float, sd: float, size: int = 1) -> np.ndarray:
    """`size` stationary AR(1) paths of length n (rows), started from the stationary law."""
    eps = rng.normal(0.0, sd * np.sqrt(1 - rho * rho), (size, n))
    eps[:, 0] = rng.normal(0.0, sd, size)
    # x_t = rho x_{t-1} + eps_t, vectorized: x_t = sum_s rho^(t-s) eps_s
    t = np.arange(n)
    decay = np.tril(rho ** np.abs(t[:, None] - t[None, :]))
    return eps @ decay.T


def draw(rng: np.random.Generator, model: Model = MODEL,
         shift: dict[str, float] | None = None,
         shifted: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One run's requests: (endpoint number, window, latency in µs as clamped integers).

    `shifted` (a bool per window) applies `shift` to those windows only (an
    interleaved run whose every other block is slower); default: every window."""
    n_e, n_w = len(model.endpoints), model.seconds
    rates = np.array([e.rate for e in model.endpoints]) * model.rate_scale
    med = np.log([e.median_ms * 1000 for e in model.endpoints])
    sig = np.array([e.sigma for e in model.endpoints])
    factor = np.array([(shift or {}).get(e.key, 1.0) for e in model.endpoints])
    level = (ar1(rng, n_w, model.rho, model.shared_drift_sd)
             + ar1(rng, n_w, model.rho, model.own_drift_sd, n_e))  # (n_e, n_w)
    burst = np.where(rng.random(n_w) < model.burst_p,
                     np.log(rng.uniform(model.burst_low, model.burst_high, n_w)), 0.0)
    mask = np.ones(n_w) if shifted is None else np.asarray(shifted, dtype=np.float64)
    level = level + burst + med[:, None] + np.log(factor)[:, None] * mask[None, :]
    counts = rng.poisson(np.repeat(rates[:, None], n_w, axis=1))  # (n_e, n_w)
    cell = np.repeat(np.arange(n_e * n_w), counts.ravel())
    ep, window = np.divmod(cell, n_w)
    z = rng.standard_normal(len(cell))
    us = np.exp(level.ravel()[cell] + sig[ep] * z)
    us = np.clip(np.rint(us), hdr.LOWEST_US, hdr.HIGHEST_US).astype(np.int64)
    return ep, window, us


def simulate(rng: np.random.Generator, model: Model = MODEL,
             shift: dict[str, float] | None = None) -> dict[str, list[hdr.HdrHistogram]]:
    """One run: per endpoint key, one HdrHistogram per measured second (empty ones too)."""
    ep, window, us = draw(rng, model, shift)
    n_w = model.seconds
    out = {k: [hdr.new_histogram() for _ in range(n_w)] for k in model.keys}
    key = (ep * n_w + window) * (hdr.HIGHEST_US + 1) + us
    uniq, cnt = np.unique(key, return_counts=True)
    cell, value = np.divmod(uniq, hdr.HIGHEST_US + 1)
    e_of, w_of = np.divmod(cell, n_w)
    for e, w, v, c in zip(e_of.tolist(), w_of.tolist(), value.tolist(), cnt.tolist()):
        hdr.record(out[model.keys[e]][w], v, c)
    return out


_LAYOUT = Layout.of(hdr.new_histogram())


def counts_index(us: np.ndarray) -> np.ndarray:
    """HdrHistogram's counts index of each value, vectorized (`_counts_index_for`)."""
    h = hdr.new_histogram()
    mask = h.sub_bucket_mask
    bit_length = np.frexp((us | mask).astype(np.float64))[1].astype(np.int64)
    bucket = bit_length - h.unit_magnitude - (h.sub_bucket_half_count_magnitude + 1)
    sub = us >> (bucket + h.unit_magnitude)
    return ((bucket + 1) << h.sub_bucket_half_count_magnitude) + sub - h.sub_bucket_half_count


def simulate_counts(rng: np.random.Generator, model: Model = MODEL,
                    shift: dict[str, float] | None = None,
                    keys: tuple[str, ...] | None = None,
                    shifted: np.ndarray | None = None) -> dict[str, WindowCounts]:
    """The same run as `simulate` (same draws), as `blocks.window_counts` would read it.

    `keys` keeps only those endpoints (the draws stay those of the whole run)."""
    ep, window, us = draw(rng, model, shift, shifted)
    wanted = [model.keys.index(k) for k in (keys or model.keys)]
    keep = np.isin(ep, wanted)
    ep, window, us = ep[keep], window[keep], us[keep]
    n_w = model.seconds
    width = _LAYOUT.counts_len
    key = (ep * n_w + window) * width + counts_index(us)
    uniq, cnt = np.unique(key, return_counts=True)
    cell, index = np.divmod(uniq, width)
    bounds = np.searchsorted(cell, np.arange(len(model.keys) * n_w + 1))
    out: dict[str, WindowCounts] = {}
    cnt = cnt.astype(np.float64)
    for e in wanted:
        k = model.keys[e]
        idx = tuple(index[bounds[e * n_w + w]:bounds[e * n_w + w + 1]] for w in range(n_w))
        c = tuple(cnt[bounds[e * n_w + w]:bounds[e * n_w + w + 1]] for w in range(n_w))
        out[k] = WindowCounts(_LAYOUT, idx, c)
    return out
