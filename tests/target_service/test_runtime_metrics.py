"""Runtime health series: event-loop lag, GC pauses, CPU and memory, and their lifecycle.

The monitor must see a blocked loop and a forced collection, report a real
process's CPU and memory, never observe a metric from inside the GC hook, and
leave neither task nor hook behind when the service stops.
"""

from __future__ import annotations

import asyncio
import gc
import time

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from target_service.runtime import RuntimeMetrics, RuntimeMonitor, resident_memory_bytes
from target_service.settings import Settings
from tests.conftest import running_app


def monitor(**kwargs) -> tuple[RuntimeMonitor, CollectorRegistry]:
    registry = CollectorRegistry()
    return RuntimeMonitor(RuntimeMetrics(registry), **kwargs), registry


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels or None) or 0.0


async def wait_for(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "not within the timeout"
        await asyncio.sleep(0.01)


async def test_a_blocked_loop_is_observed_as_lag():
    mon, registry = monitor(interval=0.02)
    mon.start()
    try:
        await wait_for(lambda: mon.ticks >= 3)
        assert value(registry, "target_event_loop_lag_seconds_count") >= 3

        def slow() -> float:  # observations over 0.1 s
            return value(registry, "target_event_loop_lag_seconds_count") - \
                value(registry, "target_event_loop_lag_seconds_bucket", le="0.1")

        ticks, slow_before = mon.ticks, slow()
        lag_before = value(registry, "target_event_loop_lag_seconds_sum")
        time.sleep(0.3)  # noqa: ASYNC251 - blocking the loop is the point
        await wait_for(lambda: mon.ticks > ticks)
        assert slow() >= slow_before + 1
        assert value(registry, "target_event_loop_lag_seconds_sum") - lag_before >= 0.25
    finally:
        await mon.stop()


async def test_a_forced_collection_is_observed_by_generation():
    mon, registry = monitor(interval=0.02)
    before = {g: value(registry, "python_gc_pause_seconds_count", generation=g)
              for g in ("0", "1", "2")}
    assert before == {"0": 0.0, "1": 0.0, "2": 0.0}  # pre-created: zeros, not "no data"
    mon.start()
    try:
        gc.collect()
        gc.collect(0)
        # the hook only queues the pauses; the probe's next tick observes them
        await wait_for(lambda: value(registry, "python_gc_pause_seconds_count",
                                     generation="2") >= 1)
        await wait_for(lambda: value(registry, "python_gc_pause_seconds_count",
                                     generation="0") >= 1)
        assert 0 < value(registry, "python_gc_pause_seconds_sum", generation="2") < 5
    finally:
        await mon.stop()


def test_the_gc_hook_touches_no_metric():
    """Observing inside a collection could re-enter prometheus-client's lock and deadlock."""
    mon, registry = monitor()
    mon._on_gc("start", {"generation": 1, "collected": 0, "uncollectable": 0})
    mon._on_gc("stop", {"generation": 1, "collected": 0, "uncollectable": 0})
    assert value(registry, "python_gc_pause_seconds_count", generation="1") == 0
    assert mon.flush_gc() == 1
    assert value(registry, "python_gc_pause_seconds_count", generation="1") == 1


def test_cpu_and_memory_are_the_process_s_own():
    mon, registry = monitor()
    end = time.process_time() + 0.05
    while time.process_time() < end:  # burn a little CPU
        pass
    mon.sample()
    cpu = value(registry, "process_cpu_seconds_total")
    assert cpu >= 0.05 and abs(cpu - time.process_time()) < 0.5
    rss = value(registry, "process_resident_memory_bytes")
    assert 10 << 20 < rss < 64 << 30  # a Python process with FastAPI loaded: tens of MB
    assert abs(rss - resident_memory_bytes()) < 64 << 20
    mon.sample()
    assert value(registry, "process_cpu_seconds_total") >= cpu  # a counter never goes back


async def test_stop_ends_the_task_and_unhooks_the_gc():
    mon, _ = monitor(interval=0.01)
    mon.start()
    await wait_for(lambda: mon.ticks >= 1)
    assert mon.alive and mon._on_gc in gc.callbacks
    await mon.stop()
    assert not mon.alive and mon._task.done()
    assert mon._on_gc not in gc.callbacks
    await mon.stop()  # idempotent


async def test_the_service_runs_the_monitor_for_its_lifespan(shared_dbs):
    async with running_app(shared_dbs["optimized"]) as (app, client):
        runtime = app.state.resources.runtime
        assert runtime.alive and runtime._on_gc in gc.callbacks
        await wait_for(lambda: runtime.ticks >= 1)
        text = (await client.get("/metrics")).text
        samples = {s.name: s.value for f in text_string_to_metric_families(text)
                   for s in f.samples if not s.labels or s.name.startswith("process_")}
        assert samples["target_event_loop_lag_seconds_count"] >= 1
        assert samples["process_cpu_seconds_total"] > 0
        assert samples["process_resident_memory_bytes"] > 0
    assert not runtime.alive and runtime._task.done()
    assert runtime._on_gc not in gc.callbacks
    assert runtime.sample not in app.state.metrics.render_hooks


async def test_the_service_freezes_its_startup_heap_and_thaws_it_on_shutdown(shared_dbs):
    """Generation-2 collections would otherwise rescan every import and route table."""
    assert gc.get_freeze_count() == 0
    async with running_app(shared_dbs["optimized"], gc_freeze=True) as (_app, client):
        frozen = gc.get_freeze_count()
        assert frozen > 10_000  # imports, FastAPI's routes, pydantic's models at least
        text = (await client.get("/metrics")).text
        gauge = [s.value for f in text_string_to_metric_families(text) for s in f.samples
                 if s.name == "python_gc_frozen_objects"]
        assert len(gauge) == 1 and abs(gauge[0] - frozen) < 0.01 * frozen  # as frozen
    assert gc.get_freeze_count() == 0


async def test_no_freeze_when_the_setting_is_off(shared_dbs):
    async with running_app(shared_dbs["optimized"], gc_freeze=False) as (_, client):
        assert gc.get_freeze_count() == 0
        text = (await client.get("/metrics")).text
        assert "python_gc_frozen_objects 0.0" in text


async def test_the_young_generation_threshold_is_set_for_the_service_and_restored(shared_dbs):
    """Fewer young collections while the service runs (`Settings.gc_young_threshold`), the
    older generations' thresholds kept, the process's own thresholds back on shutdown."""
    before = gc.get_threshold()
    assert before[0] != 12_345
    async with running_app(shared_dbs["optimized"], gc_young_threshold=12_345):
        assert gc.get_threshold() == (12_345, *before[1:])
    assert gc.get_threshold() == before
    async with running_app(shared_dbs["optimized"], gc_young_threshold=None):
        assert gc.get_threshold() == before


def test_a_young_threshold_too_small_is_refused():
    with pytest.raises(ValidationError):
        Settings(gc_young_threshold=10)
    assert Settings().gc_young_threshold == 10_000
