"""MemoryCache loading: single flight, stale-while-revalidate, shutdown."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry

from target_service.cache.memory import CacheMetricFamilies, CacheStatus, MemoryCache
from tests.cache.helpers import FakeClock, GatedLoader, settle, spin


def make(clock: FakeClock | None = None, **kwargs) -> MemoryCache:
    kwargs.setdefault("default_ttl", 60.0)
    return MemoryCache("test", clock=clock or FakeClock(), **kwargs)


# ------------------------------------------------------------- single flight


async def test_hundred_concurrent_misses_share_one_load():
    cache = make()
    loader = GatedLoader({"kpi": 1})
    waiters = [asyncio.create_task(cache.get_or_load("k", loader)) for _ in range(100)]
    await loader.started.wait()
    await spin()
    loader.open()
    results = await asyncio.gather(*waiters)
    assert loader.calls == 1
    assert all(r == ({"kpi": 1}, CacheStatus.MISS) for r in results)
    assert await cache.get_or_load("k", loader) == ({"kpi": 1}, CacheStatus.HIT)
    stats = cache.stats()
    assert stats.misses == 100 and stats.coalesced == 99 and stats.loads == 1 and stats.hits == 1


async def test_loader_exception_reaches_every_waiter_and_is_not_cached():
    cache = make()
    loader = GatedLoader(error=RuntimeError("db down"))
    waiters = [asyncio.create_task(cache.get_or_load("k", loader)) for _ in range(100)]
    await loader.started.wait()
    loader.open()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert loader.calls == 1
    assert all(isinstance(r, RuntimeError) and str(r) == "db down" for r in results)
    assert "k" not in cache
    assert cache.stats().load_failures == 1

    retry = GatedLoader("ok")
    retry.open()
    assert await cache.get_or_load("k", retry) == ("ok", CacheStatus.MISS)  # loads again
    assert retry.calls == 1


async def test_cancelling_one_waiter_does_not_cancel_the_shared_load():
    cache = make()
    loader = GatedLoader("v")
    first = asyncio.create_task(cache.get_or_load("k", loader))
    second = asyncio.create_task(cache.get_or_load("k", loader))
    await loader.started.wait()
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    loader.open()
    assert await second == ("v", CacheStatus.MISS)
    assert loader.calls == 1
    assert cache.get("k") == "v"


async def test_load_completes_and_is_cached_even_if_every_waiter_is_cancelled():
    cache = make()
    loader = GatedLoader("v")
    waiter = asyncio.create_task(cache.get_or_load("k", loader))
    await loader.started.wait()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    loader.open()
    await settle(cache)
    assert cache.lookup("k") == ("v", CacheStatus.HIT)


async def test_different_keys_load_independently():
    cache = make()
    loaders = {key: GatedLoader(key) for key in "abc"}
    tasks = [asyncio.create_task(cache.get_or_load(k, ld)) for k, ld in loaders.items()]
    for loader in loaders.values():
        await loader.started.wait()
        loader.open()
    assert [r[0] for r in await asyncio.gather(*tasks)] == ["a", "b", "c"]
    assert all(loader.calls == 1 for loader in loaders.values())


async def test_load_time_is_recorded():
    registry = CollectorRegistry()
    cache = MemoryCache("timed", metrics=CacheMetricFamilies(registry), clock=FakeClock())
    loader = GatedLoader("v")
    loader.open()
    await cache.get_or_load("k", loader)
    assert registry.get_sample_value("cache_load_seconds_count", {"cache": "timed"}) == 1
    # the load took real (perf_counter) time, and stats and the metric saw the same
    total = cache.stats().load_seconds_total
    assert total > 0
    assert registry.get_sample_value("cache_load_seconds_sum", {"cache": "timed"}) == total


# ------------------------------------------------------ stale-while-revalidate


async def test_stale_value_is_served_while_exactly_one_refresh_runs():
    clock = FakeClock()
    cache = make(clock)
    first = GatedLoader("v1")
    first.open()
    await cache.get_or_load("k", first, ttl=10, soft_ttl=5)
    clock.advance(6)

    refresh = GatedLoader("v2")
    results = [await cache.get_or_load("k", refresh, ttl=10, soft_ttl=5) for _ in range(20)]
    assert results == [("v1", CacheStatus.STALE)] * 20
    await refresh.started.wait()
    assert refresh.calls == 1
    assert cache.in_flight == 1
    refresh.open()
    await settle(cache)
    assert await cache.get_or_load("k", refresh, ttl=10, soft_ttl=5) == ("v2", CacheStatus.HIT)
    assert refresh.calls == 1
    assert cache.stats().stale_hits == 20


async def test_hard_ttl_value_is_not_served():
    clock = FakeClock()
    cache = make(clock)
    await cache.get_or_load("k", _const("v1"), ttl=10, soft_ttl=5)
    clock.advance(10)
    loader = GatedLoader("v2")
    loader.open()
    assert await cache.get_or_load("k", loader, ttl=10, soft_ttl=5) == ("v2", CacheStatus.MISS)
    assert loader.calls == 1


async def test_miss_after_hard_ttl_joins_the_running_refresh():
    clock = FakeClock()
    cache = make(clock)
    await cache.get_or_load("k", _const("v1"), ttl=10, soft_ttl=5)
    clock.advance(6)
    refresh = GatedLoader("v2")
    assert (await cache.get_or_load("k", refresh, ttl=10, soft_ttl=5))[1] == CacheStatus.STALE
    await refresh.started.wait()
    clock.advance(5)  # past the hard TTL while the refresh is still running
    other = GatedLoader("other")
    waiter = asyncio.create_task(cache.get_or_load("k", other, ttl=10, soft_ttl=5))
    await spin()
    refresh.open()
    assert await waiter == ("v2", CacheStatus.MISS)
    assert other.calls == 0 and refresh.calls == 1


async def test_failed_refresh_keeps_stale_value_until_hard_ttl_and_is_counted():
    clock = FakeClock()
    cache = make(clock, refresh_retry_interval=2)
    await cache.get_or_load("k", _const("v1"), ttl=10, soft_ttl=5)
    clock.advance(5)
    failing = GatedLoader(error=RuntimeError("upstream 503"))
    failing.open()
    assert await cache.get_or_load("k", failing, ttl=10, soft_ttl=5) == ("v1", CacheStatus.STALE)
    await settle(cache)
    assert cache.stats().refresh_failures == 1
    # within the retry interval: still stale, no new refresh
    clock.advance(1)
    assert await cache.get_or_load("k", failing, ttl=10, soft_ttl=5) == ("v1", CacheStatus.STALE)
    assert cache.in_flight == 0 and failing.calls == 1
    # after it: one more refresh is tried
    clock.advance(1)
    assert await cache.get_or_load("k", failing, ttl=10, soft_ttl=5) == ("v1", CacheStatus.STALE)
    await settle(cache)
    assert failing.calls == 2 and cache.stats().refresh_failures == 2
    # at the hard TTL the stale value is gone
    clock.advance(3)
    assert cache.lookup("k") is None


async def test_refresh_failure_metric():
    registry = CollectorRegistry()
    clock = FakeClock()
    cache = MemoryCache("swr", metrics=CacheMetricFamilies(registry), clock=clock)
    await cache.get_or_load("k", _const("v1"), ttl=10, soft_ttl=5)
    clock.advance(5)
    failing = GatedLoader(error=RuntimeError("boom"))
    failing.open()
    await cache.get_or_load("k", failing, ttl=10, soft_ttl=5)
    await settle(cache)
    labels = {"cache": "swr", "kind": "refresh"}
    assert registry.get_sample_value("cache_load_failures_total", labels) == 1
    assert registry.get_sample_value("cache_stale_hits_total", {"cache": "swr"}) == 1


async def test_refresh_in_background_is_single_flighted():
    clock = FakeClock()
    cache = make(clock)
    cache.set("k", "v1", ttl=10, soft_ttl=5)
    loader = GatedLoader("v2")
    assert cache.refresh_in_background("k", loader) is True
    assert cache.refresh_in_background("k", loader) is False
    await loader.started.wait()
    loader.open()
    await settle(cache)
    assert loader.calls == 1 and cache.get("k") == "v2"


async def test_close_cancels_background_refreshes():
    clock = FakeClock()
    cache = make(clock)
    cache.set("k", "v1", ttl=10, soft_ttl=5)
    clock.advance(6)
    never = GatedLoader("v2")
    await cache.get_or_load("k", never, ttl=10, soft_ttl=5)
    await never.started.wait()
    assert cache.in_flight == 1
    await cache.close(timeout=1)
    assert cache.in_flight == 0
    # still usable: stale is served without starting a refresh, misses load inline
    assert await cache.get_or_load("k", never, ttl=10, soft_ttl=5) == ("v1", CacheStatus.STALE)
    assert cache.in_flight == 0 and never.calls == 1
    assert await cache.get_or_load("new", _const("n")) == ("n", CacheStatus.MISS)
    assert cache.get("new") == "n"


async def test_close_cancels_pending_loads_and_their_waiters_see_cancellation():
    cache = make()
    never = GatedLoader("v")
    waiter = asyncio.create_task(cache.get_or_load("k", never))
    await never.started.wait()
    await cache.close(timeout=1)
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert "k" not in cache


def _const(value):
    async def load():
        return value

    return load
