"""An in-process background job queue: bounded, deduplicated, retried, observable.

The service has work that must not sit on a request's critical path: warming
caches at start-up (most active users first), refreshing entries after an
invalidation, refreshing the KPI view, writing ElevenLabs snapshots. This queue
runs such work on a fixed number of worker tasks in the service's event loop.

Contract, and why:

* **Never blocks the submitter.** `submit()` is synchronous: it queues the job
  or refuses it at once. A full queue rejects (counted in
  `jobs_rejected_total{reason="full"}`) instead of applying back-pressure to a
  request handler.
* **Deduplicated by key.** A job is identified by its `key` (e.g.
  `("warm", user_id)`), its `name` is the kind of job (a metric label, so keep
  the set of names small). Submitting a key that is already queued or waiting
  for a retry is a no-op: the pending run has not started, so it will see the
  newest data anyway. Submitting a key whose job is *running* schedules exactly
  one rerun after the current run finishes (however many times it is
  submitted meanwhile, and with the newest factory), because the running job
  may have read data older than whatever caused the re-submission ("refresh
  after invalidation"). Pass `rerun_if_running=False` to make that a no-op too.
  `submit` returns True whenever the work will happen (queued, already
  pending, or rerun scheduled) and False only when it was rejected.
* **Bounded.** At most `max_queued` jobs wait (queued or backing off before a
  retry); reruns bypass the bound (there are at most `workers` of them), so a
  requested refresh is never lost to a full queue.
* **Retries with exponential backoff** (`RetryPolicy`). A job waiting for its
  retry does not hold a worker. Only the final failure counts in
  `jobs_failed_total`; each retry counts in `jobs_retries_total`.
* **Priorities.** Higher `priority` runs first; equal priorities run in
  submission order.
* **Bounded shutdown.** `close(timeout)` stops accepting, lets the queue drain
  for `timeout` seconds, then cancels what is left and waits at most
  `cancel_timeout` for it to stop.

Metrics come from a `JobMetrics` (job_metrics.py) built on a registry you pass (nothing is created
at import time); gauges aggregate with `livesum` under prometheus multiprocess mode.
With a `tracer`, each attempt is a `job <name>` span starting a trace of its own,
linked to the span that submitted the job.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from enum import Enum

from opentelemetry.trace import Link, Tracer

from target_service.job_metrics import JobMetrics, JobStats
from target_service.tracing import background_span, current_link

__all__ = ["JobFactory", "JobQueue", "RetryPolicy"]

logger = logging.getLogger(__name__)

JobFactory = Callable[[], Awaitable[object]]
"""Creates the job's coroutine; called once per attempt, so each retry starts afresh."""

@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently a failing job is retried.

    The delay after failed attempt n (1-based) is
    `min(max_delay, base_delay * multiplier ** (n - 1))`, spread by ±`jitter`
    (a fraction) so that many jobs failing together do not retry together.
    """

    attempts: int = 3
    """Total attempts, including the first (1 = no retry)."""
    base_delay: float = 0.5
    multiplier: float = 2.0
    max_delay: float = 30.0
    jitter: float = 0.0
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    """Exceptions worth retrying; anything else fails the job at once."""

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0 or self.multiplier < 1:
            raise ValueError("delays must be non-negative and multiplier at least 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter is a fraction between 0 and 1")

    def delay(self, failed_attempt: int) -> float:
        """Seconds to wait after attempt `failed_attempt` (1-based) failed."""
        delay = min(self.max_delay, self.base_delay * self.multiplier ** (failed_attempt - 1))
        if self.jitter:
            delay *= 1 + self.jitter * (2 * random.random() - 1)
        return max(0.0, delay)


class _State(Enum):
    QUEUED = "queued"
    RUNNING = "running"
    WAITING = "waiting"  # backing off before a retry
    GONE = "gone"


class _Job:
    __slots__ = (
        "attempt",
        "factory",
        "key",
        "link",
        "name",
        "priority",
        "rerun",
        "retry",
        "state",
        "timeout",
        "timer",
    )

    def __init__(self, key: Hashable, name: str, factory: JobFactory, priority: int,
                 retry: RetryPolicy, timeout: float | None, link: Link | None = None) -> None:
        self.key = key
        self.name = name
        self.factory = factory
        self.priority = priority
        self.retry = retry
        self.timeout = timeout
        self.attempt = 0
        self.state = _State.QUEUED
        self.rerun: _Job | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.link = link


class JobQueue:
    """Runs submitted jobs on `workers` tasks; see the module docstring for the contract.

    Args:
        name: the `queue` label of its metrics.
        workers: number of worker tasks (jobs running at once).
        max_queued: jobs that may wait at once; further new keys are rejected.
        retry: default retry policy (per job with `submit(retry=...)`).
        job_timeout: default per-attempt timeout in seconds (None: none); a
            timeout is a failure like any other and is retried.
        metrics: shared `JobMetrics` of a registry, or None for none.
        tracer: traces each attempt (None: untraced).
    """

    def __init__(
        self,
        name: str = "jobs",
        *,
        workers: int = 2,
        max_queued: int = 1000,
        retry: RetryPolicy | None = None,
        job_timeout: float | None = None,
        metrics: JobMetrics | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        if max_queued < 1:
            raise ValueError("max_queued must be at least 1")
        self.name = name
        self._n_workers = workers
        self._max_queued = max_queued
        self._retry = retry or RetryPolicy()
        self._job_timeout = job_timeout
        self._metrics = metrics
        self.tracer = tracer
        self._ready: asyncio.PriorityQueue[tuple[int, int, _Job]] = asyncio.PriorityQueue()
        self._seq = 0
        self._jobs: dict[Hashable, _Job] = {}
        self._workers: list[asyncio.Task] = []
        self._idle = asyncio.Event()
        self._idle.set()
        self._accepting = True
        self._stopped = False
        self._pending = 0  # QUEUED + WAITING
        self._running = 0
        self._submitted = self._deduplicated = self._reruns = 0
        self._rejected_full = self._rejected_closed = 0
        self._done = self._failed = self._retries = self._cancelled = 0

    # ------------------------------------------------------------------ API

    def start(self) -> None:
        """Start the worker tasks (idempotent; needs a running event loop)."""
        if self._workers or self._stopped:
            return
        loop = asyncio.get_running_loop()
        self._workers = [
            loop.create_task(self._worker(), name=f"jobs:{self.name}:worker-{i}")
            for i in range(self._n_workers)
        ]

    def submit(
        self,
        key: Hashable,
        name: str,
        factory: JobFactory,
        *,
        priority: int = 0,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
        rerun_if_running: bool = True,
    ) -> bool:
        """Queue a job without waiting; False only if it was rejected (full or closed).

        A key already queued or backing off: no-op. A key running: one rerun is
        scheduled after it (unless `rerun_if_running=False`). Jobs queued before
        `start()` run once the workers start.
        """
        if not self._accepting:
            self._rejected_closed += 1
            self._inc("rejected", name, "closed")
            return False
        job = self._jobs.get(key)
        if job is not None:
            if job.state is _State.RUNNING and rerun_if_running:
                if job.rerun is None:
                    self._reruns += 1
                else:
                    self._deduplicated += 1
                    self._inc("deduplicated", name)
                job.rerun = self._new_job(key, name, factory, priority, retry, timeout)
            else:
                self._deduplicated += 1
                self._inc("deduplicated", name)
            return True
        if self._pending >= self._max_queued:
            self._rejected_full += 1
            self._inc("rejected", name, "full")
            return False
        job = self._new_job(key, name, factory, priority, retry, timeout)
        self._jobs[key] = job
        self._submitted += 1
        self._pending += 1
        self._idle.clear()
        self._enqueue(job)
        self._sync_gauges()
        return True

    def is_pending(self, key: Hashable) -> bool:
        """Whether a job with this key is queued, backing off or running."""
        return key in self._jobs

    async def drain(self, timeout: float | None = None) -> bool:
        """Wait until no job is queued, backing off or running; False on timeout.

        Only meaningful after `start()` (nothing runs before).
        """
        if self._idle.is_set():
            return True
        try:
            async with asyncio.timeout(timeout):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True

    async def close(self, timeout: float = 5.0, *, cancel_timeout: float = 1.0) -> bool:
        """Stop accepting, drain for up to `timeout` s, then cancel what is left.

        Returns True if everything finished without being cancelled. Returns within
        about `timeout + cancel_timeout` seconds even if a job ignores cancellation.
        """
        if self._stopped:
            return not self._jobs
        self._accepting = False
        drained = await self.drain(timeout) if self._workers else self._idle.is_set()
        self._stopped = True
        for job in list(self._jobs.values()):
            if job.state is not _State.RUNNING:  # running ones are counted by their worker
                self._drop(job)
        for worker in self._workers:
            worker.cancel()
        if self._workers:
            _done, pending = await asyncio.wait(self._workers, timeout=cancel_timeout)
            if pending:
                logger.warning("job queue %s: %d jobs ignored cancellation", self.name,
                               len(pending))
        self._jobs.clear()
        self._idle.set()
        self._sync_gauges()
        return drained

    def stats(self) -> JobStats:
        return JobStats(
            submitted=self._submitted, deduplicated=self._deduplicated, reruns=self._reruns,
            rejected_full=self._rejected_full, rejected_closed=self._rejected_closed,
            done=self._done, failed=self._failed, retries=self._retries,
            cancelled=self._cancelled, queued=self._pending, running=self._running,
        )

    # ------------------------------------------------------------- internals

    def _new_job(self, key: Hashable, name: str, factory: JobFactory, priority: int,
                 retry: RetryPolicy | None, timeout: float | None) -> _Job:
        return _Job(key, name, factory, priority, retry or self._retry,
                    self._job_timeout if timeout is None else timeout,
                    None if self.tracer is None else current_link())

    def _enqueue(self, job: _Job) -> None:
        job.state = _State.QUEUED
        self._seq += 1
        self._ready.put_nowait((-job.priority, self._seq, job))

    async def _worker(self) -> None:
        while not self._stopped:  # also ends a worker whose job swallowed the cancellation
            _, _, job = await self._ready.get()
            if job.state is not _State.QUEUED:
                continue  # dropped at close
            job.state = _State.RUNNING
            job.attempt += 1
            self._pending -= 1
            self._running += 1
            self._sync_gauges()
            error: BaseException | None = None
            started = time.perf_counter()
            try:
                async with asyncio.timeout(job.timeout):
                    if self.tracer is None:
                        await job.factory()
                    else:
                        with background_span(self.tracer, f"job {job.name}", {
                                "job.queue": self.name, "job.name": job.name,
                                "job.attempt": job.attempt}, job.link):
                            await job.factory()
            except asyncio.CancelledError as exc:
                if asyncio.current_task().cancelling():  # type: ignore[union-attr]
                    self._running -= 1
                    self._drop(job)  # close() is cancelling us
                    raise
                error = exc  # the job cancelled itself: a failure, not a shutdown
            except Exception as exc:  # noqa: BLE001 - any failure of a job is retried or counted
                error = exc
            finally:
                if self._metrics is not None:
                    self._metrics.duration.labels(self.name, job.name).observe(
                        time.perf_counter() - started)
            self._running -= 1
            self._after_attempt(job, error)
            self._sync_gauges()

    def _after_attempt(self, job: _Job, error: BaseException | None) -> None:
        if error is None:
            self._done += 1
            self._inc("done", job.name)
        elif (
            job.attempt < job.retry.attempts
            and isinstance(error, job.retry.retry_on)
            and not self._stopped
        ):
            self._retries += 1
            self._inc("retries", job.name)
            delay = job.retry.delay(job.attempt)
            logger.warning("job %s %r attempt %d failed (%r); retrying in %.3fs", job.name,
                           job.key, job.attempt, error, delay)
            if job.rerun is not None:  # the retry runs after the re-submission anyway
                job.factory, job.rerun = job.rerun.factory, None
            job.state = _State.WAITING
            self._pending += 1
            job.timer = asyncio.get_running_loop().call_later(delay, self._retry_now, job)
            return
        else:
            self._failed += 1
            self._inc("failed", job.name)
            logger.error("job %s %r failed after %d attempts", job.name, job.key, job.attempt,
                         exc_info=error)
        rerun = job.rerun
        if rerun is not None and not self._stopped:
            self._jobs[job.key] = rerun  # bypasses the bound: it was accepted earlier
            self._pending += 1
            self._enqueue(rerun)
            return
        job.state = _State.GONE
        if self._jobs.get(job.key) is job:
            del self._jobs[job.key]
        if not self._jobs:
            self._idle.set()

    def _retry_now(self, job: _Job) -> None:
        job.timer = None
        if job.state is _State.WAITING and not self._stopped:
            self._enqueue(job)

    def _drop(self, job: _Job) -> None:
        """Forget a job at shutdown, counting it as cancelled."""
        if job.state in (_State.QUEUED, _State.WAITING):
            self._pending -= 1
        if job.timer is not None:
            job.timer.cancel()
            job.timer = None
        job.state = _State.GONE
        self._jobs.pop(job.key, None)
        for dropped in (job, job.rerun):
            if dropped is not None:
                self._cancelled += 1
                self._inc("cancelled", dropped.name)
        job.rerun = None

    def _inc(self, family: str, name: str, *extra: str) -> None:
        if self._metrics is not None:
            getattr(self._metrics, family).labels(self.name, name, *extra).inc()

    def _sync_gauges(self) -> None:
        if self._metrics is not None:
            self._metrics.queued.labels(self.name).set(self._pending)
            self._metrics.running.labels(self.name).set(self._running)
