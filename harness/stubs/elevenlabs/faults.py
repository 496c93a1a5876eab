"""Fault model, presets and the per-request fault decision of the ElevenLabs stub.

The stub has to reproduce, on demand and on loopback, everything the real
upstream does to a client on a bad day: slow answers, 5xx, 429s (rate or
concurrency), requests that never answer, dropped connections and whole
outages. This module is the pure part of that: pydantic models describing a
fault configuration, the named presets, and :class:`FaultEngine`, which turns
a configuration plus a request into a :class:`Decision`. The HTTP layer in
:mod:`harness.stubs.elevenlabs` only executes decisions.

Configuration (JSON, the body of ``POST /__admin/faults``)::

    {"latency": {"kind": "lognormal", "median_ms": 300, "p99_ms": 1500},
     "error_rate": 0.2, "error_statuses": [500, 502, 503],
     "rate_limit_rate": 0.0, "rate_limit_kind": "rate_limit_exceeded",
     "retry_after_s": 1, "max_concurrency": null,
     "hang_rate": 0.0, "hang_s": 300, "reset_rate": 0.0,
     "outage": {"start_after_s": 0, "duration_s": 30},
     "per_agent": {"agent_x": {"hang_rate": 1.0}}, "seed": 7}

Every field is optional. ``per_agent`` values are *partial* configurations:
only the fields given there replace the global ones for that agent.
Probabilities of the mutually exclusive random faults (reset, hang, rate
limit, error) are drawn from one uniform number, so their sum must be <= 1.
An outage window is anchored at the moment the configuration was applied.

Determinism: the random draw for a request is seeded by
``(seed, agent key, n)`` where ``n`` counts that agent's requests since the
configuration was applied, so a given agent sees the same fault sequence
whatever the interleaving with other agents (parallel clients stay
reproducible).
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import Counter
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer, model_validator

# z-score of the 99th percentile of a standard normal; turns (median, p99)
# into the sigma of a lognormal.
_Z99 = 2.3263478740408408

FaultKind = Literal[
    "none", "error", "rate_limit", "concurrency_limit", "hang", "reset", "outage"
]


class LatencySpec(BaseModel):
    """Added service time: nothing, a fixed delay, or a lognormal distribution.

    A lognormal is described by its median and p99 because those are the two
    numbers people read off real latency dashboards.
    """

    model_config = ConfigDict(extra="forbid")

    kind: Literal["none", "fixed", "lognormal"] = "none"
    fixed_ms: float = Field(0.0, ge=0)
    median_ms: float = Field(0.0, ge=0)
    p99_ms: float = Field(0.0, ge=0)

    @model_validator(mode="after")
    def _check(self) -> LatencySpec:
        if self.kind == "lognormal" and not (0 < self.median_ms <= self.p99_ms):
            raise ValueError("lognormal latency needs 0 < median_ms <= p99_ms")
        return self

    def sample_s(self, rng: random.Random) -> float:
        if self.kind == "fixed":
            return self.fixed_ms / 1000.0
        if self.kind == "lognormal":
            mu = math.log(self.median_ms)
            sigma = (math.log(self.p99_ms) - mu) / _Z99
            return rng.lognormvariate(mu, sigma) / 1000.0
        return 0.0


class OutageSpec(BaseModel):
    """A window during which every upstream request gets a 503.

    ``start_after_s`` is relative to when the configuration was applied;
    ``duration_s=None`` means "until the configuration changes".
    "Now for N seconds" is ``{"start_after_s": 0, "duration_s": N}``.
    """

    model_config = ConfigDict(extra="forbid")

    start_after_s: float = Field(0.0, ge=0)
    duration_s: float | None = Field(None, gt=0)

    def active(self, elapsed_s: float) -> bool:
        if elapsed_s < self.start_after_s:
            return False
        return self.duration_s is None or elapsed_s < self.start_after_s + self.duration_s


class FaultConfig(BaseModel):
    """One complete fault configuration (global, or a partial per-agent one)."""

    model_config = ConfigDict(extra="forbid")

    latency: LatencySpec = Field(default_factory=LatencySpec)
    error_rate: float = Field(0.0, ge=0, le=1)
    error_statuses: list[Literal[500, 502, 503]] = Field(
        default_factory=lambda: [500, 502, 503], min_length=1
    )
    rate_limit_rate: float = Field(0.0, ge=0, le=1)
    rate_limit_kind: Literal["rate_limit_exceeded", "concurrent_limit_exceeded"] = (
        "rate_limit_exceeded"
    )
    # Retry-After of 429s and outage 503s, in seconds; fractional values are
    # sent as-is (non-standard, lets tests run a scaled-down schedule).
    retry_after_s: float = Field(1.0, ge=0)
    max_concurrency: int | None = Field(None, ge=1)
    hang_rate: float = Field(0.0, ge=0, le=1)
    hang_s: float = Field(300.0, gt=0)
    reset_rate: float = Field(0.0, ge=0, le=1)
    outage: OutageSpec | None = None
    per_agent: dict[str, FaultConfig] = Field(default_factory=dict)
    seed: int | None = None

    @model_validator(mode="after")
    def _check(self) -> FaultConfig:
        total = self.reset_rate + self.hang_rate + self.rate_limit_rate + self.error_rate
        if total > 1.0 + 1e-9:
            raise ValueError(
                "reset_rate + hang_rate + rate_limit_rate + error_rate must be <= 1"
            )
        for agent_id, override in self.per_agent.items():
            if "per_agent" in override.model_fields_set:
                raise ValueError(f"per_agent[{agent_id!r}] cannot nest per_agent")
        return self

    @field_serializer("per_agent")
    def _dump_overrides(self, per_agent: dict[str, FaultConfig]) -> dict[str, Any]:
        # Overrides stay partial when dumped, so a GET/POST round trip keeps
        # "only these fields differ for this agent".
        return {agent: cfg.model_dump(mode="json", exclude_unset=True)
                for agent, cfg in per_agent.items()}

    def for_agent(self, agent_id: str | None) -> FaultConfig:
        """The effective configuration for one agent (global + its override)."""
        override = self.per_agent.get(agent_id) if agent_id else None
        if override is None:
            return self
        update = {name: getattr(override, name) for name in override.model_fields_set}
        update.pop("seed", None)
        return self.model_copy(update=update)


PRESETS: dict[str, dict[str, Any]] = {
    "healthy": {},
    "slow": {"latency": {"kind": "lognormal", "median_ms": 300, "p99_ms": 1500}},
    "flaky": {"error_rate": 0.2},
    "rate_limited": {"rate_limit_rate": 0.3, "retry_after_s": 1},
    "concurrency_limited": {"max_concurrency": 4, "retry_after_s": 1},
    "outage": {"outage": {"start_after_s": 0, "duration_s": None}},
    "hanging": {"hang_rate": 0.1},
    "resetting": {"reset_rate": 0.1},
}


def build_config(preset: str | None = None, overrides: dict[str, Any] | None = None) -> FaultConfig:
    """A preset with top-level fields replaced by ``overrides`` (validated).

    Raises ``KeyError`` for an unknown preset and ``pydantic.ValidationError``
    for bad fields.
    """
    base: dict[str, Any] = {}
    if preset is not None:
        if preset not in PRESETS:
            raise KeyError(f"unknown fault preset {preset!r}; known: {', '.join(PRESETS)}")
        base = dict(PRESETS[preset])
    base.update(overrides or {})
    return FaultConfig.model_validate(base)


class Decision(BaseModel):
    """What to do with one request (executed by the HTTP layer)."""

    kind: FaultKind = "none"
    delay_s: float = 0.0
    status: int | None = None  # for error / rate_limit / concurrency_limit / outage
    retry_after_s: float | None = None
    rate_limit_kind: str | None = None
    max_concurrency: int | None = None
    hang_s: float = 0.0


class StubStats:
    """Counters of what the stub really saw (thread-safe, cheap)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.total = 0
            self.by_agent: Counter[str] = Counter()
            self.by_status: Counter[str] = Counter()
            self.by_fault: Counter[str] = Counter()
            self.by_agent_status: dict[str, Counter[str]] = {}
            self.by_endpoint: Counter[str] = Counter()
            self.max_in_flight = 0

    def record_start(self, agent: str, endpoint: str, in_flight: int) -> None:
        with self._lock:
            self.total += 1
            self.by_agent[agent] += 1
            self.by_endpoint[endpoint] += 1
            self.max_in_flight = max(self.max_in_flight, in_flight)

    def record_end(self, agent: str, status: int | None, fault: str) -> None:
        # status None: no HTTP response was sent (reset, cancelled hang).
        key = str(status) if status is not None else "none"
        with self._lock:
            self.by_status[key] += 1
            self.by_fault[fault] += 1
            self.by_agent_status.setdefault(agent, Counter())[key] += 1

    def snapshot(self, in_flight: int) -> dict[str, Any]:
        with self._lock:
            return {
                "total": self.total,
                "by_agent": dict(self.by_agent),
                "by_status": dict(self.by_status),
                "by_fault": dict(self.by_fault),
                "by_agent_status": {a: dict(c) for a, c in self.by_agent_status.items()},
                "by_endpoint": dict(self.by_endpoint),
                "in_flight": in_flight,
                "max_in_flight": self.max_in_flight,
            }


class FaultEngine:
    """Holds the live configuration and decides the fault of each request."""

    def __init__(self, config: FaultConfig | None = None, *, seed: int = 0,
                 clock: Any = time.monotonic) -> None:
        self._clock = clock
        self._default_seed = seed
        self._lock = threading.Lock()
        self.in_flight = 0
        self.apply(config or FaultConfig())

    @property
    def config(self) -> FaultConfig:
        return self._config

    @property
    def seed(self) -> int:
        return self._seed

    def apply(self, config: FaultConfig) -> None:
        """Replace the configuration; restarts outage windows and RNG streams."""
        with self._lock:
            self._config = config
            self._seed = config.seed if config.seed is not None else self._default_seed
            self._applied_at = self._clock()
            self._counters: Counter[str] = Counter()

    def enter(self) -> int:
        with self._lock:
            self.in_flight += 1
            return self.in_flight

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def decide(self, agent_key: str, in_flight: int) -> Decision:
        """The fault for one request; ``in_flight`` includes this request."""
        with self._lock:
            cfg = self._config.for_agent(agent_key)
            n = self._counters[agent_key]
            self._counters[agent_key] += 1
            elapsed = self._clock() - self._applied_at
            seed = self._seed
        if cfg.max_concurrency is not None and in_flight > cfg.max_concurrency:
            return Decision(kind="concurrency_limit", status=429,
                            retry_after_s=cfg.retry_after_s,
                            rate_limit_kind="concurrent_limit_exceeded",
                            max_concurrency=cfg.max_concurrency)
        if cfg.outage is not None and cfg.outage.active(elapsed):
            return Decision(kind="outage", status=503, retry_after_s=cfg.retry_after_s)
        rng = random.Random(f"{seed}|{agent_key}|{n}")
        u = rng.random()
        delay = cfg.latency.sample_s(rng)
        edge = cfg.reset_rate
        if u < edge:
            return Decision(kind="reset")
        edge += cfg.hang_rate
        if u < edge:
            return Decision(kind="hang", hang_s=cfg.hang_s)
        edge += cfg.rate_limit_rate
        if u < edge:
            return Decision(kind="rate_limit", status=429, delay_s=delay,
                            retry_after_s=cfg.retry_after_s,
                            rate_limit_kind=cfg.rate_limit_kind)
        edge += cfg.error_rate
        if u < edge:
            status = cfg.error_statuses[rng.randrange(len(cfg.error_statuses))]
            return Decision(kind="error", status=status, delay_s=delay)
        return Decision(kind="none", delay_s=delay)


def format_retry_after(seconds: float) -> str:
    """Header value: an integer when whole (RFC 9110), else a short decimal."""
    if float(seconds).is_integer():
        return str(int(seconds))
    return f"{seconds:.3f}".rstrip("0").rstrip(".")
