"""`BoundedCache`: the synchronous half of the in-memory cache (storage, TTLs, invalidation).

Everything here runs without awaiting, so on one event loop each call is atomic
with respect to other tasks; `MemoryCache` (memory.py) adds the asynchronous
half, loading with single flight and stale-while-revalidate, on top.

* **Bounded**: least-recently-used eviction (cachetools' `LRUCache`, see
  `_store.py`) under two limits, entries and bytes. Bytes are the *serialized*
  size of a value (`pickle` by default, or a `sizeof` of your choosing, or
  `size=` per write), because `sys.getsizeof` of a dict ignores everything it
  points to.
* **Two TTLs per entry**: before the soft TTL a value is a `HIT`; between soft
  and hard TTL it is `STALE` (servable while a refresh runs); at the hard TTL
  it is never served again.
* **Invalidation that sticks**: `invalidate`, `invalidate_tag` (all of one
  user's entries through a tag index, without a scan), `invalidate_where`,
  `invalidate_prefix`, `clear`. A write carrying a `generation()` taken before
  an invalidation that covers it is refused (see `generations.py`).
* **Observable**: `stats()` snapshots and Prometheus series (`metrics.py`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any, Generic, TypeVar

from ._store import Entry, LRUStore
from .generations import Generation, InvalidationLog
from .keys import CacheStatus, pickled_size
from .metrics import CacheMetricFamilies, CacheMetrics, CacheStats, EvictionCause

logger = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BoundedCache(Generic[K, V]):
    """A bounded LRU cache with soft and hard TTLs, tags, safe invalidation and statistics.

    Args:
        name: the `cache` label of its metrics and the name in `stats()`.
        max_entries: entry-count limit (LRU eviction beyond it).
        max_bytes: limit on the summed value sizes (None: no byte limit).
        default_ttl: hard TTL in seconds when a write does not give one.
        default_soft_ttl: soft TTL when a write does not give one (clamped to its
            hard TTL); None means no stale phase unless a write asks for one.
        sizeof: measures a value in bytes (default: pickled length).
        tags_of: derives tags from a key (e.g. `tags_from_key(2)` for user ids);
            writes may add more with `tags=`.
        metrics: shared `cache_*` families of a registry, or None for none.
        clock: monotonic seconds, injectable so TTL tests need not sleep.
        max_generation_age: how long invalidations are remembered; a write whose
            generation is older than this is refused if anything was invalidated since.
    """

    def __init__(
        self,
        name: str,
        *,
        max_entries: int = 10_000,
        max_bytes: int | None = 64 * 1024 * 1024,
        default_ttl: float = 60.0,
        default_soft_ttl: float | None = None,
        sizeof: Callable[[V], int] = pickled_size,
        tags_of: Callable[[K], Iterable[Hashable]] | None = None,
        metrics: CacheMetricFamilies | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_generation_age: float = 60.0,
    ) -> None:
        if default_ttl <= 0:
            raise ValueError("default_ttl must be positive")
        if default_soft_ttl is not None and default_soft_ttl <= 0:
            raise ValueError("default_soft_ttl must be positive")
        self.name = name
        self._default_ttl = default_ttl
        self._default_soft_ttl = default_soft_ttl
        self._sizeof = sizeof
        self._tags_of = tags_of
        self._clock = clock
        self._m: CacheMetrics = (
            CacheMetrics.null() if metrics is None else metrics.for_cache(name)
        )
        self._store = LRUStore(max_entries, max_bytes, self._on_capacity_evict)
        self._by_tag: dict[Hashable, set[K]] = {}
        self._log = InvalidationLog(clock, max_generation_age)
        self._warned_unsizeable = False
        self._hits = self._misses = self._stale = self._coalesced = 0
        self._ev_size = self._ev_ttl = self._ev_inval = 0
        self._loads = self._load_failures = self._refresh_failures = 0
        self._rejected = self._discarded = 0
        self._load_seconds = 0.0

    # ------------------------------------------------------------------ reads

    def lookup(self, key: K) -> tuple[V, CacheStatus] | None:
        """The value and HIT/STALE, or None on a miss. Counts; starts no refresh."""
        found = self._counted_find(key, self._clock())
        return None if found is None else (found[0].value, found[1])

    def _counted_find(self, key: K, now: float) -> tuple[Entry, CacheStatus] | None:
        """The live entry and whether it is fresh (HIT) or past its soft TTL (STALE),
        counting the hit, stale hit or miss; the one place reads are classified."""
        entry = self._find(key, now)
        if entry is None:
            self._misses += 1
            self._m.misses.inc()
            return None
        if now < entry.soft_deadline:
            self._hits += 1
            self._m.hits.inc()
            return entry, CacheStatus.HIT
        self._stale += 1
        self._m.stale_hits.inc()
        return entry, CacheStatus.STALE

    def get(self, key: K, default: Any = None) -> V | Any:
        """The value (fresh or stale) or `default`."""
        found = self.lookup(key)
        return default if found is None else found[0]

    def get_many(self, keys: Iterable[K]) -> dict[K, tuple[V, CacheStatus]]:
        """Look up many keys in one pass; absent keys are missing from the result.

        Callers load the missing ones in one batch and `set_many` them with the
        `generation()` taken before that load (so an invalidation meanwhile is
        not undone); with a `MemoryCache` they may `refresh_in_background` the
        STALE ones.
        """
        found: dict[K, tuple[V, CacheStatus]] = {}
        for key in keys:
            hit = self.lookup(key)
            if hit is not None:
                found[key] = hit
        return found

    def __contains__(self, key: object) -> bool:
        """Whether a servable (fresh or stale) value is held; no statistics, no LRU touch."""
        entry = self._store.peek(key)  # type: ignore[arg-type]
        return entry is not None and self._clock() < entry.hard_deadline

    def __len__(self) -> int:
        return len(self._store)

    def snapshot_keys(self) -> list[K]:
        """A snapshot of the keys held (servable or not yet purged); no LRU touch."""
        return list(self._store)

    # ----------------------------------------------------------------- writes

    def generation(self) -> Generation:
        """Take this before reading the source of truth; pass it to `set`/`set_many`."""
        return self._log.current()

    def set(
        self,
        key: K,
        value: V,
        *,
        ttl: float | None = None,
        soft_ttl: float | None = None,
        tags: Iterable[Hashable] = (),
        size: int | None = None,
        generation: Generation | None = None,
    ) -> bool:
        """Store a value; False if it was not stored (too large, or invalidated since
        `generation` was taken, in which case any older value stays evicted)."""
        hard, soft = self._ttls(ttl, soft_ttl)
        stored = self._put(key, value, hard, soft, self._tags_for(key, tags), size, generation)
        self._sync_gauges()
        return stored

    def set_many(
        self,
        items: Mapping[K, V] | Iterable[tuple[K, V]],
        *,
        ttl: float | None = None,
        soft_ttl: float | None = None,
        tags: Iterable[Hashable] = (),
        generation: Generation | None = None,
    ) -> int:
        """Store many values with the same TTLs; returns how many were stored."""
        hard, soft = self._ttls(ttl, soft_ttl)
        extra = tuple(tags)
        pairs = items.items() if isinstance(items, Mapping) else items
        stored = 0
        for key, value in pairs:
            tag_set = self._tags_for(key, extra)
            stored += self._put(key, value, hard, soft, tag_set, None, generation)
        self._sync_gauges()
        return stored

    # ----------------------------------------------------------- invalidation

    def invalidate(self, key: K) -> bool:
        """Evict one key and refuse writes of loads of it that started earlier."""
        self._log.record_keys((key,))
        removed = self._remove(key, "invalidation")
        self._sync_gauges()
        return removed

    def invalidate_tag(self, tag: Hashable) -> int:
        """Evict every entry carrying `tag` (e.g. `user_tag(7)`); returns how many."""
        return self.invalidate_tags((tag,))

    def invalidate_tags(self, tags: Iterable[Hashable]) -> int:
        """Evict every entry carrying any of `tags` (one NOTIFY may name several users)."""
        tags = tuple(tags)
        self._log.record_tags(tags)
        removed = 0
        for tag in tags:
            for key in tuple(self._by_tag.get(tag, ())):
                removed += self._remove(key, "invalidation")
        self._sync_gauges()
        return removed

    def invalidate_where(self, predicate: Callable[[K], bool]) -> int:
        """Evict every key matching `predicate` (a scan; prefer tags on hot paths)."""
        self._log.record_predicate(predicate)  # type: ignore[arg-type]
        removed = sum(self._remove(key, "invalidation") for key in
                      [key for key in self._store if predicate(key)])
        self._sync_gauges()
        return removed

    def invalidate_prefix(self, prefix: tuple) -> int:
        """Evict every tuple key starting with `prefix`, e.g. `("overview", 3)`."""
        n = len(prefix)
        return self.invalidate_where(lambda key: isinstance(key, tuple) and key[:n] == prefix)

    def clear(self) -> int:
        """Evict everything (e.g. after losing the change feed); returns how many."""
        self._log.record_all()
        count = len(self._store)
        self._store.clear()
        self._by_tag.clear()
        self._ev_inval += count
        self._m.evictions_invalidation.inc(count)
        self._sync_gauges()
        return count

    def purge_expired(self) -> int:
        """Drop entries past their hard TTL now (they are otherwise dropped when met)."""
        now = self._clock()
        expired = [key for key in self._store if self._store.peek(key).hard_deadline <= now]
        for key in expired:
            self._remove(key, "ttl")
        self._sync_gauges()
        return len(expired)

    # -------------------------------------------------------------- lifecycle

    def stats(self) -> CacheStats:
        """A snapshot of the in-process counters."""
        return CacheStats(
            name=self.name, hits=self._hits, misses=self._misses, stale_hits=self._stale,
            evictions_size=self._ev_size, evictions_ttl=self._ev_ttl,
            evictions_invalidation=self._ev_inval, entries=len(self._store),
            bytes=int(self._store.currsize), loads=self._loads,
            load_failures=self._load_failures, refresh_failures=self._refresh_failures,
            coalesced=self._coalesced, rejected=self._rejected,
            discarded_writes=self._discarded, load_seconds_total=self._load_seconds,
        )


    # --------------------------------------------------------------- internals

    def _ttls(self, ttl: float | None, soft_ttl: float | None) -> tuple[float, float]:
        hard = self._default_ttl if ttl is None else ttl
        if hard <= 0:
            raise ValueError("ttl must be positive")
        if soft_ttl is None:
            soft = hard if self._default_soft_ttl is None else min(self._default_soft_ttl, hard)
        elif 0 < soft_ttl <= hard:
            soft = soft_ttl
        else:
            raise ValueError("soft_ttl must be positive and not above ttl")
        return hard, soft

    def _tags_for(self, key: K, extra: Iterable[Hashable]) -> tuple:
        derived = () if self._tags_of is None else tuple(self._tags_of(key))
        return derived + tuple(extra) if extra else derived

    def _find(self, key: K, now: float) -> Entry | None:
        try:
            entry = self._store[key]
        except KeyError:
            return None
        if now >= entry.hard_deadline:
            self._remove(key, "ttl")
            self._sync_gauges()
            return None
        return entry

    def _put(self, key, value, hard: float, soft: float, tags: tuple, size: int | None,
             generation: Generation | None) -> bool:
        if generation is not None and not self._log.allows(key, tags, generation):
            self._discarded += 1
            self._m.discarded_writes.inc()
            return False
        if size is None:
            try:
                size = self._sizeof(value)
            except Exception:
                if not self._warned_unsizeable:
                    self._warned_unsizeable = True
                    logger.warning("cache %s: cannot measure a value of %s; not caching it",
                                   self.name, type(value).__name__, exc_info=True)
                return self._reject(key)
        now = self._clock()
        entry = Entry(value, size, now + soft, now + hard, tags)
        old = self._store.peek(key)
        if old is not None:  # replace: not an eviction, but the old tags must go
            del self._store[key]
            self._unindex(key, old)
        try:
            self._store[key] = entry
        except ValueError:  # larger than max_bytes on its own
            if old is not None:
                self._count_eviction("size")
            return self._reject(key)
        for tag in tags:
            keys = self._by_tag.get(tag)
            if keys is None:
                self._by_tag[tag] = {key}
            else:
                keys.add(key)
        return True

    def _reject(self, key: K) -> bool:
        """Do not store; an older value under the key is outdated, so it goes too."""
        self._rejected += 1
        self._m.rejected.inc()
        self._remove(key, "size")
        return False

    def _remove(self, key: K, cause: EvictionCause) -> bool:
        entry = self._store.peek(key)
        if entry is None:
            return False
        del self._store[key]
        self._unindex(key, entry)
        self._count_eviction(cause)
        return True

    def _on_capacity_evict(self, key: K, entry: Entry) -> None:
        self._unindex(key, entry)
        # An entry that was already past its hard TTL cost no capacity decision.
        self._count_eviction("ttl" if entry.hard_deadline <= self._clock() else "size")

    def _unindex(self, key: K, entry: Entry) -> None:
        for tag in entry.tags:
            keys = self._by_tag.get(tag)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_tag[tag]

    def _count_eviction(self, cause: EvictionCause) -> None:
        if cause == "size":
            self._ev_size += 1
            self._m.evictions_size.inc()
        elif cause == "ttl":
            self._ev_ttl += 1
            self._m.evictions_ttl.inc()
        else:
            self._ev_inval += 1
            self._m.evictions_invalidation.inc()

    def _sync_gauges(self) -> None:
        self._m.entries.set(len(self._store))
        self._m.bytes.set(self._store.currsize)
