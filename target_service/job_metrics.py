"""What a job queue counts: its `jobs_*` Prometheus families and its in-process snapshot.

Kept apart from the queue (jobs.py) because the service builds the families once
per registry in its lifespan (`resources.py`) and hands them to every queue,
while the queue's own logic never needs to know their names or buckets.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

DURATION_BUCKETS = (
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)


@dataclass(frozen=True, slots=True)
class JobStats:
    """A snapshot of one queue's in-process counters (since it was created)."""

    submitted: int
    """Jobs accepted as new (not counting deduplicated submissions or reruns)."""
    deduplicated: int
    """Submissions absorbed by a job already pending (or by an already scheduled rerun)."""
    reruns: int
    """Reruns scheduled because the key was submitted while its job was running."""
    rejected_full: int
    rejected_closed: int
    done: int
    failed: int
    """Jobs that failed their last attempt (or a non-retryable error)."""
    retries: int
    cancelled: int
    """Jobs dropped or interrupted by `close()`."""
    queued: int
    """Jobs waiting to run, including those backing off before a retry."""
    running: int


class JobMetrics:
    """The `jobs_*` metric families on one registry; build one per registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.queued = Gauge(
            "jobs_queued", "Jobs waiting to run (including those backing off before a retry).",
            ["queue"], registry=registry, multiprocess_mode="livesum",
        )
        self.running = Gauge(
            "jobs_running", "Jobs running right now.", ["queue"], registry=registry,
            multiprocess_mode="livesum",
        )
        self.done = Counter(
            "jobs_done_total", "Jobs that succeeded.", ["queue", "name"], registry=registry,
        )
        self.failed = Counter(
            "jobs_failed_total", "Jobs that failed for good (retries exhausted).",
            ["queue", "name"], registry=registry,
        )
        self.retries = Counter(
            "jobs_retries_total", "Failed attempts that were scheduled for a retry.",
            ["queue", "name"], registry=registry,
        )
        self.rejected = Counter(
            "jobs_rejected_total", "Submissions refused, by reason (full, closed).",
            ["queue", "name", "reason"], registry=registry,
        )
        self.deduplicated = Counter(
            "jobs_deduplicated_total", "Submissions absorbed by a pending or running job.",
            ["queue", "name"], registry=registry,
        )
        self.cancelled = Counter(
            "jobs_cancelled_total", "Jobs dropped or interrupted at shutdown.",
            ["queue", "name"], registry=registry,
        )
        self.duration = Histogram(
            "job_duration_seconds", "Duration of each job attempt.", ["queue", "name"],
            buckets=DURATION_BUCKETS, registry=registry,
        )
