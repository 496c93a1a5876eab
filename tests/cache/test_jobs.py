"""The background job queue: dedup, reruns, bound, retries, metrics, drain and close."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from prometheus_client import CollectorRegistry

from target_service.job_metrics import JobMetrics
from target_service.jobs import JobQueue, RetryPolicy
from tests.cache.helpers import spin

FAST = RetryPolicy(attempts=3, base_delay=0.001, multiplier=2, max_delay=0.01)


class Recorder:
    """Job factories that record their runs and can be held open."""

    def __init__(self) -> None:
        self.runs: list[str] = []
        self.gates: dict[str, asyncio.Event] = {}
        self.started: dict[str, asyncio.Event] = {}

    def job(self, label: str, *, hold: bool = False, fail: int = 0, error=RuntimeError):
        failures = {"left": fail}
        if hold:
            self.gates[label] = asyncio.Event()
        self.started.setdefault(label, asyncio.Event())

        async def run() -> None:
            self.runs.append(label)
            self.started[label].set()
            if label in self.gates:
                await self.gates[label].wait()
            if failures["left"] > 0:
                failures["left"] -= 1
                raise error(f"{label} failed")

        return run

    def release(self, label: str) -> None:
        self.gates[label].set()


async def test_jobs_run_and_drain():
    queue = JobQueue(workers=2)
    rec = Recorder()
    queue.start()
    for i in range(10):
        assert queue.submit(("warm", i), "warm", rec.job(f"j{i}"))
    assert await queue.drain(timeout=5)
    assert sorted(rec.runs) == sorted(f"j{i}" for i in range(10))
    stats = queue.stats()
    assert stats.done == 10 and stats.queued == 0 and stats.running == 0
    await queue.close()


async def test_submitting_a_queued_key_is_a_no_op():
    queue = JobQueue(workers=1)
    rec = Recorder()
    assert queue.submit("k", "warm", rec.job("first"))
    assert queue.submit("k", "warm", rec.job("second"))  # still queued: absorbed
    queue.start()
    assert await queue.drain(timeout=5)
    assert rec.runs == ["first"]
    assert queue.stats().deduplicated == 1
    await queue.close()


async def test_resubmitting_a_running_key_schedules_exactly_one_rerun():
    queue = JobQueue(workers=1)
    rec = Recorder()
    queue.start()
    queue.submit("refresh:7", "refresh", rec.job("run1", hold=True))
    await rec.started["run1"].wait()
    for i in range(5):  # five invalidations while it runs
        assert queue.submit("refresh:7", "refresh", rec.job(f"rerun{i}"))
    assert queue.is_pending("refresh:7")
    rec.release("run1")
    assert await queue.drain(timeout=5)
    assert rec.runs == ["run1", "rerun4"]  # one rerun, with the newest factory
    stats = queue.stats()
    assert stats.reruns == 1 and stats.deduplicated == 4 and stats.done == 2
    await queue.close()


async def test_rerun_can_be_declined():
    queue = JobQueue(workers=1)
    rec = Recorder()
    queue.start()
    queue.submit("k", "warm", rec.job("run1", hold=True))
    await rec.started["run1"].wait()
    assert queue.submit("k", "warm", rec.job("again"), rerun_if_running=False)
    rec.release("run1")
    assert await queue.drain(timeout=5)
    assert rec.runs == ["run1"]
    await queue.close()


async def test_full_queue_rejects_without_blocking_and_counts():
    registry = CollectorRegistry()
    queue = JobQueue("bounded", workers=1, max_queued=3, metrics=JobMetrics(registry))
    rec = Recorder()
    accepted = [queue.submit(i, "warm", rec.job(f"j{i}")) for i in range(5)]  # not started
    assert accepted == [True, True, True, False, False]
    assert queue.stats().rejected_full == 2
    labels = {"queue": "bounded", "name": "warm", "reason": "full"}
    assert registry.get_sample_value("jobs_rejected_total", labels) == 2
    assert registry.get_sample_value("jobs_queued", {"queue": "bounded"}) == 3
    queue.start()
    assert await queue.drain(timeout=5)
    assert rec.runs == ["j0", "j1", "j2"]
    await queue.close()


async def test_submit_never_awaits():
    queue = JobQueue(workers=1, max_queued=1)
    rec = Recorder()
    queue.start()
    queue.submit("busy", "x", rec.job("busy", hold=True))
    await rec.started["busy"].wait()
    # submit is a plain function: it returns at once whether accepted or not
    assert not asyncio.iscoroutinefunction(queue.submit)
    assert queue.submit("a", "x", rec.job("a")) is True
    assert queue.submit("b", "x", rec.job("b")) is False
    rec.release("busy")
    assert await queue.drain(timeout=5)
    await queue.close()


async def test_retries_with_backoff_then_success():
    registry = CollectorRegistry()
    queue = JobQueue("r", workers=1, retry=FAST, metrics=JobMetrics(registry))
    rec = Recorder()
    times: list[float] = []
    inner = rec.job("flaky", fail=2)

    async def timed() -> None:
        times.append(asyncio.get_running_loop().time())
        await inner()

    queue.start()
    queue.submit("k", "flaky", timed)
    assert await queue.drain(timeout=5)
    assert rec.runs == ["flaky"] * 3
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # backoff: each retry waits at least its delay (0.001 s, then 0.002 s)
    assert gaps[0] >= FAST.delay(1) * 0.9 and gaps[1] >= FAST.delay(2) * 0.9
    stats = queue.stats()
    assert (stats.retries, stats.done, stats.failed) == (2, 1, 0)
    assert registry.get_sample_value("jobs_retries_total", {"queue": "r", "name": "flaky"}) == 2
    assert registry.get_sample_value("jobs_done_total", {"queue": "r", "name": "flaky"}) == 1
    count = registry.get_sample_value("job_duration_seconds_count", {"queue": "r", "name": "flaky"})
    assert count == 3
    await queue.close()


def test_backoff_delays_grow_and_are_capped():
    policy = RetryPolicy(attempts=10, base_delay=0.5, multiplier=2, max_delay=3)
    assert [policy.delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    jittered = RetryPolicy(base_delay=1, jitter=0.5)
    assert all(0.5 <= jittered.delay(1) <= 1.5 for _ in range(100))
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)


async def test_failure_after_retries_is_counted_and_does_not_stop_the_queue():
    registry = CollectorRegistry()
    queue = JobQueue("f", workers=1, retry=FAST, metrics=JobMetrics(registry))
    rec = Recorder()
    queue.start()
    queue.submit("bad", "snapshot", rec.job("bad", fail=99))
    queue.submit("good", "snapshot", rec.job("good"))
    assert await queue.drain(timeout=5)
    assert rec.runs.count("bad") == 3 and "good" in rec.runs
    stats = queue.stats()
    assert (stats.failed, stats.done, stats.retries) == (1, 1, 2)
    assert registry.get_sample_value("jobs_failed_total", {"queue": "f", "name": "snapshot"}) == 1
    assert registry.get_sample_value("jobs_running", {"queue": "f"}) == 0
    await queue.close()


async def test_non_retryable_errors_fail_at_once_and_timeouts_are_retried():
    policy = RetryPolicy(attempts=3, base_delay=0.001, retry_on=(TimeoutError,))
    queue = JobQueue(workers=2, retry=policy)
    rec = Recorder()
    queue.start()
    queue.submit("value", "x", rec.job("value", fail=5, error=ValueError))

    slow_runs = []

    async def slow() -> None:
        slow_runs.append(1)
        await asyncio.Event().wait()  # never finishes on its own

    queue.submit("slow", "x", slow, timeout=0.01)
    assert await queue.drain(timeout=5)
    assert rec.runs == ["value"]  # ValueError is not in retry_on
    assert len(slow_runs) == 3  # each attempt timed out and was retried
    assert queue.stats().failed == 2
    await queue.close()


async def test_priorities_run_higher_first():
    queue = JobQueue(workers=1)
    rec = Recorder()
    for user, priority in [(1, 0), (2, 5), (3, 1), (4, 5)]:
        queue.submit(("warm", user), "warm", rec.job(f"u{user}"), priority=priority)
    queue.start()
    assert await queue.drain(timeout=5)
    assert rec.runs == ["u2", "u4", "u3", "u1"]
    await queue.close()


async def test_drain_times_out_and_close_cancels_within_the_bound():
    registry = CollectorRegistry()
    queue = JobQueue("c", workers=1, metrics=JobMetrics(registry))
    rec = Recorder()
    queue.start()
    queue.submit("stuck", "refresh", rec.job("stuck", hold=True))
    queue.submit("waiting", "refresh", rec.job("waiting"))
    await rec.started["stuck"].wait()
    assert await queue.drain(timeout=0.01) is False
    assert await queue.close(timeout=0.01, cancel_timeout=1) is False
    assert rec.runs == ["stuck"]
    stats = queue.stats()
    assert stats.cancelled == 2 and stats.queued == 0 and stats.running == 0
    assert registry.get_sample_value("jobs_cancelled_total", {"queue": "c", "name": "refresh"}) == 2
    assert queue.submit("late", "refresh", rec.job("late")) is False
    assert queue.stats().rejected_closed == 1
    assert all(worker.done() for worker in queue._workers)


async def test_close_drains_pending_work_first():
    queue = JobQueue(workers=2)
    rec = Recorder()
    queue.start()
    for i in range(6):
        queue.submit(i, "warm", rec.job(f"j{i}"))
    assert await queue.close(timeout=5) is True
    assert len(rec.runs) == 6
    assert queue.stats().cancelled == 0


async def test_close_cancels_jobs_backing_off_before_a_retry():
    policy = RetryPolicy(attempts=5, base_delay=60)  # a retry far in the future
    queue = JobQueue(workers=1, retry=policy)
    rec = Recorder()
    queue.start()
    queue.submit("k", "x", rec.job("k", fail=1))
    await rec.started["k"].wait()
    await spin()
    assert queue.stats().queued == 1  # waiting for its retry, not holding a worker
    assert await queue.close(timeout=0.01) is False
    assert queue.stats().cancelled == 1 and rec.runs == ["k"]


async def test_close_before_start_drops_queued_jobs():
    queue = JobQueue()
    queue.submit("k", "x", Recorder().job("k"))
    assert await queue.close(timeout=0.01) is False
    assert queue.stats().cancelled == 1


async def test_close_returns_even_if_a_job_ignores_cancellation():
    queue = JobQueue(workers=1)
    started = asyncio.Event()
    finished = asyncio.Event()

    async def stubborn() -> None:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            await asyncio.sleep(3600)  # swallows the first cancellation
        finished.set()

    queue.start()
    queue.submit("k", "stubborn", stubborn)
    await started.wait()
    assert await queue.close(timeout=0.01, cancel_timeout=0.05) is False
    assert not finished.is_set()  # close did not wait for it
    assert queue.submit("again", "x", stubborn) is False
    for worker in queue._workers:  # clean up the straggler for the next tests
        worker.cancel()
    await asyncio.wait(queue._workers, timeout=5)
    assert all(worker.done() for worker in queue._workers)
