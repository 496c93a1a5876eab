"""Prometheus metrics of the ElevenLabs client.

Nothing is registered at import time: :class:`ElevenLabsMetrics` is built from
the ``CollectorRegistry`` the service owns (``telemetry.py``), so tests and
several app instances in one process never collide. When the client gets no
metrics object it makes one on a private registry.

The harness derives its upstream figures from these series:

* retry rate = ``elevenlabs_retries_total`` / ``elevenlabs_requests_total``
* retry amplification = ``elevenlabs_attempts_total`` /
  ``elevenlabs_requests_total`` (1.0 = no retries)
* failure rate = ``elevenlabs_requests_total{result="failure"}`` /
  ``elevenlabs_requests_total``

==============================================  ======  =======================
name                                            type    labels
==============================================  ======  =======================
elevenlabs_upstream_request_duration_seconds    hist    outcome (per attempt)
elevenlabs_requests_total                       ctr     result (success|failure)
elevenlabs_attempts_total                       ctr     -
elevenlabs_retries_total                        ctr     reason (of the failure
                                                        that caused the retry)
elevenlabs_failures_total                       ctr     reason (final failures)
elevenlabs_timeouts_total                       ctr     kind (attempt|deadline)
elevenlabs_fallbacks_total                      ctr     source (live|cache|
                                                        database|unavailable)
elevenlabs_circuit_breaker_state                gauge   - (0 closed, 1 half-open,
                                                        2 open)
elevenlabs_circuit_breaker_transitions_total    ctr     to_state
elevenlabs_in_flight_requests                   gauge   -
==============================================  ======  =======================

``outcome`` values: ``success``, ``client_error`` (4xx but 408/429),
``rate_limited``, ``server_error`` (5xx and 408), ``timeout``, ``transport``.
Gauges carry a ``multiprocess_mode`` so they aggregate sensibly when the
service runs several uvicorn workers with ``PROMETHEUS_MULTIPROC_DIR`` set.
The table of every service metric, these included, with each ``reason`` value,
is ``docs/metrics.md`` (a test holds it to a real scrape).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Upstream calls are usually 50 ms - 2 s; the tail up to the deadline matters.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0,
                    3.0, 5.0, 10.0)

OUTCOMES = ("success", "client_error", "rate_limited", "server_error", "timeout",
            "transport")
FALLBACK_SOURCES = ("live", "cache", "database", "unavailable")
BREAKER_STATE_VALUES = {"closed": 0, "half_open": 1, "open": 2}


class ElevenLabsMetrics:
    """All upstream-client series, registered on one registry."""

    def __init__(self, registry: CollectorRegistry, *, prefix: str = "elevenlabs") -> None:
        self.registry = registry
        p = prefix
        self.request_duration = Histogram(
            f"{p}_upstream_request_duration_seconds",
            "Duration of one HTTP attempt to the ElevenLabs API, by outcome.",
            ["outcome"], registry=registry, buckets=DURATION_BUCKETS)
        self.requests = Counter(
            f"{p}_requests", "Logical requests (one agent fetch, all attempts).",
            ["result"], registry=registry)
        self.attempts = Counter(
            f"{p}_attempts", "HTTP attempts sent to the ElevenLabs API.",
            registry=registry)
        self.retries = Counter(
            f"{p}_retries", "Retry attempts, by the failure reason that caused them.",
            ["reason"], registry=registry)
        self.failures = Counter(
            f"{p}_failures", "Logical requests that failed after all attempts, by reason.",
            ["reason"], registry=registry)
        self.timeouts = Counter(
            f"{p}_timeouts", "Timeouts: per attempt or of the whole request deadline.",
            ["kind"], registry=registry)
        self.fallbacks = Counter(
            f"{p}_fallbacks", "Where an agent configuration was served from.",
            ["source"], registry=registry)
        self.breaker_state = Gauge(
            f"{p}_circuit_breaker_state",
            "Circuit breaker state: 0 closed, 1 half-open, 2 open.",
            registry=registry, multiprocess_mode="livemax")
        self.breaker_transitions = Counter(
            f"{p}_circuit_breaker_transitions", "Circuit breaker state changes.",
            ["to_state"], registry=registry)
        self.in_flight = Gauge(
            f"{p}_in_flight_requests", "HTTP attempts to ElevenLabs currently in flight.",
            registry=registry, multiprocess_mode="livesum")
        # Pre-create label sets so dashboards show zeros instead of "no data".
        for outcome in OUTCOMES:
            self.request_duration.labels(outcome=outcome)
        for result in ("success", "failure"):
            self.requests.labels(result=result)
        for source in FALLBACK_SOURCES:
            self.fallbacks.labels(source=source)
        for kind in ("attempt", "deadline"):
            self.timeouts.labels(kind=kind)
        self.breaker_state.set(0)

    @classmethod
    def private(cls) -> ElevenLabsMetrics:
        """Metrics on a fresh registry (for a client built without telemetry)."""
        return cls(CollectorRegistry(auto_describe=True))

    def set_breaker_state(self, state: str) -> None:
        self.breaker_state.set(BREAKER_STATE_VALUES[state])
        self.breaker_transitions.labels(to_state=state).inc()

    def record_fallback(self, source: str) -> None:
        """Called by the agents service for each agent it serves."""
        if source not in FALLBACK_SOURCES:
            raise ValueError(f"unknown fallback source {source!r}")
        self.fallbacks.labels(source=source).inc()

    # Convenience readers (tests, the harness's in-process checks).
    def value(self, name: str, **labels: str) -> float:
        """Current value of one sample, 0.0 when absent."""
        v = self.registry.get_sample_value(name, labels or None)
        return float(v) if v is not None else 0.0

    def total(self, name: str) -> float:
        """Sum of a sample over all label sets (e.g. ``elevenlabs_retries_total``)."""
        return sum(s.value for metric in self.registry.collect() for s in metric.samples
                   if s.name == name)
