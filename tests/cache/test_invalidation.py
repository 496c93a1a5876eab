"""MemoryCache invalidation: per key, per user (tags), by predicate/prefix, clear; and the
guarantee that a load started before an invalidation never re-fills the cache."""

from __future__ import annotations

import asyncio
import random

import pytest

from target_service.cache.generations import InvalidationLog
from target_service.cache.memory import CacheStatus, MemoryCache, tags_from_key, user_tag
from tests.cache.helpers import FakeClock, GatedLoader, settle, spin


def make(clock: FakeClock | None = None, **kwargs) -> MemoryCache:
    kwargs.setdefault("default_ttl", 60.0)
    kwargs.setdefault("tags_of", tags_from_key(2))
    return MemoryCache("test", clock=clock or FakeClock(), **kwargs)


def key(user: int, namespace: str = "overview", *params) -> tuple:
    return (namespace, 1, user, *params)


# --------------------------------------------------------------- basic forms


def test_invalidate_one_key():
    cache = make()
    cache.set(key(1), "a")
    cache.set(key(2), "b")
    assert cache.invalidate(key(1)) is True
    assert cache.invalidate(key(1)) is False
    assert key(1) not in cache and key(2) in cache
    assert cache.stats().evictions_invalidation == 1


def test_per_user_invalidation_never_touches_other_users():
    cache = make()
    users = range(1, 21)
    for user in users:
        cache.set(key(user, "overview"), f"o{user}")
        cache.set(key(user, "analytics", "2024-01-01", "day"), f"a{user}")
        cache.set(key(user, "agents", 3), f"g{user}")
    assert cache.invalidate_tag(user_tag(7)) == 3
    for user in users:
        present = [k in cache for k in (key(user, "overview"),
                                         key(user, "analytics", "2024-01-01", "day"),
                                         key(user, "agents", 3))]
        assert present == ([False] * 3 if user == 7 else [True] * 3)
    assert cache.get(key(8, "overview")) == "o8"
    assert cache.invalidate_tags([user_tag(1), user_tag(2), user_tag(999)]) == 6
    assert len(cache) == 3 * 17


def test_explicit_tags_given_at_write_time():
    cache = make(tags_of=None)
    cache.set("a", 1, tags=["agent:3", "user:1"])
    cache.set("b", 2, tags=["agent:4", "user:1"])
    cache.set("c", 3, tags=["agent:3", "user:2"])
    assert cache.invalidate_tag("agent:3") == 2
    assert "b" in cache and "a" not in cache and "c" not in cache
    cache.set("b", 20, tags=["user:9"])  # replacing drops the old tags
    assert cache.invalidate_tag("user:1") == 0
    assert cache.get("b") == 20


def test_invalidate_where_and_prefix():
    cache = make()
    for user in (1, 2):
        cache.set(key(user, "overview"), 1)
        cache.set(key(user, "analytics", "x"), 2)
    assert cache.invalidate_prefix(("analytics", 1)) == 2
    assert cache.invalidate_where(lambda k: k[2] == 1) == 1
    assert [k for k in (key(1, "overview"), key(2, "overview")) if k in cache] == [
        key(2, "overview")
    ]


def test_clear_evicts_everything_and_counts():
    cache = make()
    for user in range(5):
        cache.set(key(user), user)
    assert cache.clear() == 5
    assert len(cache) == 0
    stats = cache.stats()
    assert stats.evictions_invalidation == 5 and stats.bytes == 0
    cache.set(key(1), "again")  # the tag index was reset cleanly
    assert cache.invalidate_tag(user_tag(1)) == 1


# -------------------------------------------- in-flight loads vs invalidation


INVALIDATIONS = {
    "key": lambda cache, k: cache.invalidate(k),
    "tag": lambda cache, k: cache.invalidate_tag(user_tag(k[2])),
    "tags": lambda cache, k: cache.invalidate_tags([user_tag(999), user_tag(k[2])]),
    "where": lambda cache, k: cache.invalidate_where(lambda other: other[2] == k[2]),
    "prefix": lambda cache, k: cache.invalidate_prefix(k[:3]),
    "clear": lambda cache, k: cache.clear(),
}


@pytest.mark.parametrize("how", sorted(INVALIDATIONS))
async def test_invalidation_during_a_load_does_not_refill_the_cache(how):
    cache = make()
    k = key(7)
    pre_write = GatedLoader("pre-write KPIs")
    waiter = asyncio.create_task(cache.get_or_load(k, pre_write))
    await pre_write.started.wait()

    INVALIDATIONS[how](cache, k)  # the write for user 7 is committed and notified

    # a request after the invalidation must not join the pre-write load
    post_write = GatedLoader("post-write KPIs")
    fresh = asyncio.create_task(cache.get_or_load(k, post_write))
    await post_write.started.wait()

    pre_write.open()  # the old load finishes last-but-one ...
    assert await waiter == ("pre-write KPIs", CacheStatus.MISS)  # its caller still gets it
    assert k not in cache  # ... but it is not cached
    post_write.open()
    assert await fresh == ("post-write KPIs", CacheStatus.MISS)
    assert cache.get(k) == "post-write KPIs"
    assert cache.stats().discarded_writes == 1


async def test_old_load_finishing_after_the_new_one_does_not_overwrite_it():
    cache = make()
    k = key(7)
    old = GatedLoader("old")
    old_waiter = asyncio.create_task(cache.get_or_load(k, old))
    await old.started.wait()
    cache.invalidate_tag(user_tag(7))
    new = GatedLoader("new")
    new.open()
    assert await cache.get_or_load(k, new) == ("new", CacheStatus.MISS)
    old.open()
    await old_waiter
    assert cache.get(k) == "new"


async def test_invalidating_another_user_does_not_discard_a_load():
    cache = make()
    loader = GatedLoader("mine")
    waiter = asyncio.create_task(cache.get_or_load(key(1), loader))
    await loader.started.wait()
    cache.invalidate_tag(user_tag(2))
    cache.invalidate(key(3))
    cache.invalidate_prefix(("analytics",))
    loader.open()
    await waiter
    assert cache.get(key(1)) == "mine"
    assert cache.stats().discarded_writes == 0


async def test_background_refresh_started_before_invalidation_is_discarded():
    clock = FakeClock()
    cache = make(clock)
    k = key(5)
    cache.set(k, "v1", ttl=10, soft_ttl=5)
    clock.advance(6)
    refresh = GatedLoader("v2-pre-write")
    assert (await cache.get_or_load(k, refresh, ttl=10, soft_ttl=5))[1] == CacheStatus.STALE
    await refresh.started.wait()
    cache.invalidate_tag(user_tag(5))
    refresh.open()
    await settle(cache)
    assert k not in cache


def test_set_with_a_generation_taken_before_an_invalidation_is_refused():
    cache = make()
    generation = cache.generation()  # taken before reading the database
    cache.invalidate_tag(user_tag(1))  # a write for user 1 lands meanwhile
    stored = cache.set_many(
        {key(1, "agents", a): a for a in range(3)} | {key(2, "agents", a): a for a in range(3)},
        generation=generation,
    )
    assert stored == 3
    assert all(key(2, "agents", a) in cache for a in range(3))
    assert not any(key(1, "agents", a) in cache for a in range(3))
    assert cache.set(key(1), "x", generation=generation) is False
    assert cache.set(key(1), "x", generation=cache.generation()) is True
    assert cache.stats().discarded_writes == 4


def test_generation_older_than_the_memory_of_invalidations_is_refused():
    clock = FakeClock()
    cache = make(clock, max_generation_age=30)
    generation = cache.generation()
    clock.advance(31)
    assert cache.set(key(1), "still fine: nothing was invalidated", generation=generation)
    cache.invalidate(key(99))
    assert cache.set(key(2), "too old to tell", generation=generation) is False


def test_invalidation_log_forgets_old_records():
    clock = FakeClock()
    log = InvalidationLog(clock, max_age=10)
    for i in range(100):
        log.record_keys([("k", i)])
        log.record_tags([("t", i)])
        log.record_predicate(lambda k: False)
        clock.advance(1)
    assert len(log._keys) <= 11 and len(log._tags) <= 11 and len(log._predicates) <= 11
    recent = log.current()
    log.record_keys([("k", 1)])
    assert not log.allows(("k", 1), (), recent)
    assert log.allows(("k", 2), (), recent)


# -------------------------------------------- tenant isolation under load


async def test_many_users_interleaved_each_get_only_their_own_data():
    clock = FakeClock()
    cache = make(clock)
    loads: dict[int, int] = {}
    rng = random.Random(4)

    def loader_for(user: int):
        async def load():
            loads[user] = loads.get(user, 0) + 1
            for _ in range(rng.randint(0, 3)):
                await asyncio.sleep(0)
            return {"user_id": user, "calls": user * 10}

        return load

    async def request(user: int):
        value, _status = await cache.get_or_load(key(user), loader_for(user), ttl=10, soft_ttl=5)
        return user, value

    users = [rng.randint(1, 30) for _ in range(600)]
    tasks = []
    for i, user in enumerate(users):
        tasks.append(asyncio.create_task(request(user)))
        if i % 50 == 0:
            await spin(2)
            cache.invalidate_tag(user_tag(rng.randint(1, 30)))
            clock.advance(2)
    for user, value in await asyncio.gather(*tasks):
        assert value["user_id"] == user
    await settle(cache)
    for user in set(users):
        found = cache.lookup(key(user))
        assert found is None or found[0]["user_id"] == user
