"""MemoryCache storage: LRU order, TTLs, entry and byte limits, statistics, metrics, batches."""

from __future__ import annotations

import pickle
import sys

import pytest
from prometheus_client import CollectorRegistry

from target_service.cache.memory import (
    CacheMetricFamilies,
    CacheStatus,
    MemoryCache,
    pickled_size,
    tags_from_key,
    user_tag,
)
from tests.cache.helpers import FakeClock


def make(clock: FakeClock | None = None, **kwargs) -> MemoryCache:
    kwargs.setdefault("default_ttl", 60.0)
    return MemoryCache("test", clock=clock or FakeClock(), **kwargs)


# ------------------------------------------------------------------ LRU order


def test_lru_evicts_least_recently_used_entry():
    cache = make(max_entries=3)
    for key in "abc":
        cache.set(key, key.upper())
    assert cache.get("a") == "A"  # a becomes most recently used; b is now the oldest
    cache.set("d", "D")
    assert "b" not in cache
    assert [k for k in "acd" if k in cache] == ["a", "c", "d"]
    assert len(cache) == 3
    assert cache.stats().evictions_size == 1


def test_overwriting_a_key_refreshes_its_recency_without_eviction():
    cache = make(max_entries=2)
    cache.set("a", 1)
    cache.set("b", 2)
    cache.set("a", 10)  # a is now the most recent
    cache.set("c", 3)
    assert "b" not in cache
    assert cache.get("a") == 10
    assert cache.stats().evictions_size == 1


def test_membership_does_not_touch_recency_or_statistics():
    cache = make(max_entries=2)
    cache.set("a", 1)
    cache.set("b", 2)
    assert "a" in cache  # must not make "a" recent
    cache.set("c", 3)
    assert "a" not in cache
    stats = cache.stats()
    assert (stats.hits, stats.misses) == (0, 0)


# ------------------------------------------------------------------------ TTL


def test_hard_ttl_expires_the_entry():
    clock = FakeClock()
    cache = make(clock)
    cache.set("k", "v", ttl=10)
    clock.advance(9.999)
    assert cache.lookup("k") == ("v", CacheStatus.HIT)
    clock.advance(0.001)
    assert cache.lookup("k") is None
    stats = cache.stats()
    assert stats.evictions_ttl == 1
    assert stats.entries == 0 and stats.bytes == 0


def test_soft_ttl_marks_the_entry_stale_until_the_hard_ttl():
    clock = FakeClock()
    cache = make(clock)
    cache.set("k", "v", ttl=10, soft_ttl=4)
    clock.advance(4)
    assert cache.lookup("k") == ("v", CacheStatus.STALE)
    clock.advance(6)
    assert cache.lookup("k") is None


def test_default_ttls_apply_and_soft_is_clamped_to_an_explicit_hard_ttl():
    clock = FakeClock()
    cache = make(clock, default_ttl=30, default_soft_ttl=10)
    cache.set("default", 1)
    cache.set("short", 2, ttl=5)  # default soft (10) is clamped to 5: no stale phase
    clock.advance(5)
    assert cache.lookup("default") == (1, CacheStatus.HIT)
    assert cache.lookup("short") is None
    clock.advance(5)
    assert cache.lookup("default") == (1, CacheStatus.STALE)
    clock.advance(20)
    assert cache.lookup("default") is None


@pytest.mark.parametrize(("ttl", "soft_ttl"), [(0, None), (-1, None), (10, 11), (10, 0)])
def test_invalid_ttls_are_refused(ttl, soft_ttl):
    cache = make()
    with pytest.raises(ValueError):
        cache.set("k", "v", ttl=ttl, soft_ttl=soft_ttl)


def test_purge_expired_drops_only_dead_entries():
    clock = FakeClock()
    cache = make(clock)
    cache.set("short", 1, ttl=1)
    cache.set("long", 2, ttl=100)
    clock.advance(2)
    assert cache.purge_expired() == 1
    assert len(cache) == 1 and "long" in cache
    assert cache.stats().evictions_ttl == 1


def test_capacity_eviction_of_an_expired_entry_counts_as_ttl():
    clock = FakeClock()
    cache = make(clock, max_entries=1)
    cache.set("old", 1, ttl=1)
    clock.advance(5)
    cache.set("new", 2)
    stats = cache.stats()
    assert (stats.evictions_ttl, stats.evictions_size) == (1, 0)


# ---------------------------------------------------------- size and bytes


def test_bytes_are_the_serialized_size_not_sys_getsizeof():
    cache = make()
    value = {"rows": [{"id": i, "name": f"agent-{i}"} for i in range(50)]}
    cache.set("k", value)
    assert cache.stats().bytes == pickled_size(value) == len(pickle.dumps(value, protocol=5))
    assert cache.stats().bytes > sys.getsizeof(value)  # getsizeof ignores the nested rows


def test_byte_limit_evicts_least_recently_used_until_it_fits():
    cache = make(max_bytes=100)
    cache.set("a", "a", size=40)
    cache.set("b", "b", size=40)
    cache.get("a")
    cache.set("c", "c", size=40)  # 120 > 100: the LRU entry (b) goes
    assert "b" not in cache and "a" in cache and "c" in cache
    assert cache.stats().bytes == 80
    cache.set("d", "d", size=100)  # needs everything
    assert len(cache) == 1 and cache.stats().bytes == 100
    assert cache.stats().evictions_size == 3


def test_value_larger_than_the_byte_limit_is_rejected_and_drops_the_old_value():
    cache = make(max_bytes=100)
    cache.set("k", "small", size=10)
    cache.set("other", "x", size=10)
    assert cache.set("k", "huge", size=101) is False
    assert "k" not in cache  # never serve the superseded value
    assert "other" in cache
    stats = cache.stats()
    assert stats.rejected == 1 and stats.bytes == 10


def test_unmeasurable_value_is_not_cached():
    cache = make()
    assert cache.set("k", lambda: None) is False  # lambdas do not pickle
    assert "k" not in cache
    assert cache.stats().rejected == 1


def test_custom_sizeof_and_both_limits_together():
    cache = make(max_entries=3, max_bytes=10, sizeof=len)
    cache.set("a", "xxxx")  # 4
    cache.set("b", "xxxx")  # 8
    cache.set("c", "x")  # 9, 3 entries
    cache.set("d", "x")  # entry limit: a goes (bytes 6)
    assert "a" not in cache and cache.stats().bytes == 6
    cache.set("e", "xxxxxx")  # entry limit: b goes; then 2 + 6 bytes fit
    assert "b" not in cache
    assert len(cache) == 3 and cache.stats().bytes == 8


def test_replacing_a_value_updates_bytes():
    cache = make(sizeof=len)
    cache.set("k", "x" * 10)
    cache.set("k", "x" * 3)
    assert cache.stats().bytes == 3 and len(cache) == 1
    assert cache.stats().evictions_size == 0


# ------------------------------------------------------ statistics, metrics


def test_stats_count_hits_misses_stale_and_ratio():
    clock = FakeClock()
    cache = make(clock)
    assert cache.stats().hit_ratio is None
    cache.set("k", "v", ttl=10, soft_ttl=5)
    cache.get("k")
    cache.get("k")
    cache.get("absent")
    clock.advance(6)
    cache.get("k")
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.stale_hits) == (2, 1, 1)
    assert stats.lookups == 4
    assert stats.hit_ratio == pytest.approx(0.75)
    assert stats.entries == 1


async def test_metrics_are_exported_per_cache_on_a_shared_registry():
    registry = CollectorRegistry()
    families = CacheMetricFamilies(registry)
    clock = FakeClock()
    a = MemoryCache("a", metrics=families, clock=clock, max_entries=1, sizeof=len)
    b = MemoryCache("b", metrics=families, clock=clock)

    def sample(name: str, cache: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, {"cache": cache, **labels})

    a.set("x", "12345", ttl=10, soft_ttl=5)
    a.get("x")
    a.get("missing")
    clock.advance(6)
    a.get("x")
    a.set("y", "123")  # evicts x for size
    a.set("z", "1", ttl=1)  # evicts y for size
    clock.advance(2)
    a.get("z")  # expired
    a.set("w", "12")
    a.invalidate("w")

    async def load() -> str:
        return "loaded"

    await b.get_or_load("k", load)

    assert sample("cache_hits_total", "a") == 1
    assert sample("cache_misses_total", "a") == 2
    assert sample("cache_stale_hits_total", "a") == 1
    assert sample("cache_evictions_total", "a", cause="size") == 2
    assert sample("cache_evictions_total", "a", cause="ttl") == 1
    assert sample("cache_evictions_total", "a", cause="invalidation") == 1
    assert sample("cache_entries", "a") == 0
    assert sample("cache_bytes", "a") == 0
    assert sample("cache_misses_total", "b") == 1
    assert sample("cache_hits_total", "b") == 0
    assert sample("cache_entries", "b") == 1
    assert sample("cache_bytes", "b") == pickled_size("loaded")
    assert sample("cache_load_seconds_count", "b") == 1
    assert sample("cache_load_seconds_count", "a") == 0
    assert families.entries._multiprocess_mode == "livesum"
    assert families.bytes._multiprocess_mode == "livesum"
    # in-process snapshot agrees with the registry
    assert a.stats().evictions("size") == 2 and a.stats().misses == 2


def test_building_families_twice_on_one_registry_is_refused():
    registry = CollectorRegistry()
    CacheMetricFamilies(registry)
    with pytest.raises(ValueError):
        CacheMetricFamilies(registry)


# ---------------------------------------------------------------- batches


def test_set_many_and_get_many():
    clock = FakeClock()
    cache = make(clock)
    stored = cache.set_many({("agent", i): {"id": i} for i in range(5)}, ttl=10, soft_ttl=5)
    assert stored == 5
    cache.set_many([(("agent", 9), {"id": 9})], ttl=100)
    clock.advance(6)
    found = cache.get_many([("agent", i) for i in (0, 3, 7, 9)])
    assert found == {
        ("agent", 0): ({"id": 0}, CacheStatus.STALE),
        ("agent", 3): ({"id": 3}, CacheStatus.STALE),
        ("agent", 9): ({"id": 9}, CacheStatus.HIT),
    }
    stats = cache.stats()
    assert (stats.hits, stats.stale_hits, stats.misses) == (1, 2, 1)


def test_set_many_tags_entries_for_invalidation():
    cache = make(tags_of=tags_from_key(2))
    cache.set_many({("agents", 1, uid, aid): aid for uid in (1, 2) for aid in range(3)})
    assert cache.invalidate_tag(user_tag(1)) == 3
    assert all(("agents", 1, 2, aid) in cache for aid in range(3))
    assert not any(("agents", 1, 1, aid) in cache for aid in range(3))


def test_get_with_default_and_falsy_values():
    cache = make()
    cache.set("zero", 0)
    cache.set("none", None)
    assert cache.get("zero", "d") == 0
    assert cache.lookup("none") == (None, CacheStatus.HIT)
    assert cache.get("absent", "d") == "d"
