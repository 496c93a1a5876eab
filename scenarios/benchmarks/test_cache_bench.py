"""Micro-benchmarks of `MemoryCache` on a warm 10,000-entry cache.

Run with::

    pytest scenarios/benchmarks/test_cache_bench.py --benchmark-only -o testpaths=scenarios

The cache is built exactly as the service builds it (Prometheus metrics on,
user tags on, pickled-size accounting), so the figures include that overhead.
`get` and `set` are synchronous, so they are timed directly; the asynchronous
`get_or_load` hit path is driven on a private event loop, 1,000 lookups per
round (divide the reported time by 1,000 for one lookup).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

from target_service.cache.memory import CacheMetricFamilies, MemoryCache, tags_from_key

ENTRIES = 10_000
BATCH = 1_000


def overview(user_id: int) -> dict:
    """A value shaped like a small dashboard overview payload."""
    return {
        "user_id": user_id,
        "kpis": {"calls": 1200 + user_id, "leads": 310, "conversion": 0.258, "avg_sec": 94.5},
        "agents": [{"agent_id": a, "calls": 40 * a, "success_rate": 0.9} for a in range(3)],
    }


def keys() -> list[tuple]:
    return [("overview", 1, user_id) for user_id in range(ENTRIES)]


@pytest.fixture
def warm_cache() -> MemoryCache:
    cache: MemoryCache = MemoryCache(
        "bench",
        max_entries=ENTRIES,
        max_bytes=256 * 1024 * 1024,
        default_ttl=3600,
        default_soft_ttl=1800,
        tags_of=tags_from_key(2),
        metrics=CacheMetricFamilies(CollectorRegistry()),
    )
    cache.set_many((key, overview(key[2])) for key in keys())
    assert len(cache) == ENTRIES
    return cache


def test_cache_get_hit(benchmark, warm_cache: MemoryCache) -> None:
    cycle: Iterator[tuple] = itertools.cycle(keys())
    get = warm_cache.get

    def op() -> object:
        return get(next(cycle))

    assert benchmark(op) is not None
    stats = warm_cache.stats()
    assert stats.misses == 0 and stats.hits > 0


def test_cache_set(benchmark, warm_cache: MemoryCache) -> None:
    pairs = [(key, overview(key[2] + 1)) for key in keys()]  # overwrite every entry in turn
    cycle = itertools.cycle(pairs)
    set_ = warm_cache.set

    def op() -> bool:
        key, value = next(cycle)
        return set_(key, value)

    assert benchmark(op) is True
    assert len(warm_cache) == ENTRIES and warm_cache.stats().evictions_size == 0


def test_cache_get_or_load_hit_x1000(benchmark, warm_cache: MemoryCache) -> None:
    loop = asyncio.new_event_loop()
    key_list = keys()

    async def never_called() -> dict:
        raise AssertionError("a warm cache must not load")

    async def batch() -> None:
        for i in range(BATCH):
            await warm_cache.get_or_load(key_list[i * 7 % ENTRIES], never_called)

    try:
        benchmark.extra_info["lookups_per_round"] = BATCH
        benchmark(lambda: loop.run_until_complete(batch()))
    finally:
        loop.close()
    assert warm_cache.stats().misses == 0
