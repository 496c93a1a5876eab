"""Statistics of the in-memory caches: in-process counters and Prometheus series.

Two views of the same numbers, for two readers:

* `CacheStats` is a plain snapshot of one cache's in-process counters. Tests and
  the service itself (a hit ratio in a health page, a log line at shutdown) read
  it without going through a registry.
* `CacheMetricFamilies` owns the `cache_*` metric families on one
  `CollectorRegistry`, labelled by cache name. Several caches share one set of
  families (building a family twice on a registry raises "Duplicated
  timeseries"), so build it once per registry, typically in `create_app`, and
  hand it to every `MemoryCache`. Each cache resolves its labelled children once
  (`families.for_cache(name)`), so the hot path only increments a child.

Gauges declare `multiprocess_mode="livesum"`: with several uvicorn workers each
process holds its own cache, and the fleet's entries and bytes are the sum over
the live processes. The hit ratio is derivable in PromQL as
`rate(cache_hits_total[1m]) / (rate(cache_hits_total[1m]) + rate(cache_misses_total[1m]))`
(stale hits are counted separately, in `cache_stale_hits_total`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

EvictionCause = Literal["size", "ttl", "invalidation"]
"""Why an entry left the cache: capacity (entries or bytes), hard TTL, or invalidation."""

EVICTION_CAUSES: tuple[EvictionCause, ...] = ("size", "ttl", "invalidation")

LOAD_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)
"""Load-time buckets: from an indexed query (sub-ms) to a slow upstream call (seconds)."""


class _CounterLike(Protocol):
    def inc(self, amount: float = 1) -> None: ...


class _GaugeLike(Protocol):
    def set(self, value: float) -> None: ...


class _HistogramLike(Protocol):
    def observe(self, amount: float) -> None: ...


class _Null:
    """A metric child that records nothing, so a cache without a registry has no branches."""

    __slots__ = ()

    def inc(self, amount: float = 1) -> None:
        pass

    def set(self, value: float) -> None:
        pass

    def observe(self, amount: float) -> None:
        pass


@dataclass(frozen=True, slots=True)
class CacheStats:
    """A snapshot of one cache's in-process counters (since it was created)."""

    name: str
    hits: int
    """Lookups answered with a fresh value."""
    misses: int
    """Lookups that found nothing servable (absent or past the hard TTL)."""
    stale_hits: int
    """Lookups answered with a value past its soft TTL but before its hard TTL."""
    evictions_size: int
    """Entries pushed out by the entry-count or byte limit (least recently used first)."""
    evictions_ttl: int
    """Entries dropped because their hard TTL had passed."""
    evictions_invalidation: int
    """Entries removed by `invalidate*()` or `clear()`."""
    entries: int
    bytes: int
    loads: int
    """Loader calls that completed successfully (misses and background refreshes)."""
    load_failures: int
    """Loader calls for a miss that raised (the error reached every waiter; nothing cached)."""
    refresh_failures: int
    """Background refreshes that raised (the stale value stays until its hard TTL)."""
    coalesced: int
    """Misses that joined a load already in flight instead of starting their own."""
    rejected: int
    """Values not stored: larger than the byte limit, or their size could not be measured."""
    discarded_writes: int
    """Loaded or `set` values dropped because their key was invalidated after they were read."""
    load_seconds_total: float
    """Total wall time spent in loaders (successful or not)."""

    @property
    def lookups(self) -> int:
        return self.hits + self.stale_hits + self.misses

    @property
    def hit_ratio(self) -> float | None:
        """Share of lookups served from the cache (fresh or stale); None before any lookup."""
        total = self.lookups
        return None if total == 0 else (self.hits + self.stale_hits) / total

    def evictions(self, cause: EvictionCause) -> int:
        return {
            "size": self.evictions_size,
            "ttl": self.evictions_ttl,
            "invalidation": self.evictions_invalidation,
        }[cause]


@dataclass(frozen=True, slots=True)
class CacheMetrics:
    """The labelled children of one cache; what `MemoryCache` increments on its hot path."""

    hits: _CounterLike
    misses: _CounterLike
    stale_hits: _CounterLike
    coalesced: _CounterLike
    evictions_size: _CounterLike
    evictions_ttl: _CounterLike
    evictions_invalidation: _CounterLike
    load_failures: _CounterLike
    refresh_failures: _CounterLike
    rejected: _CounterLike
    discarded_writes: _CounterLike
    entries: _GaugeLike
    bytes: _GaugeLike
    load_seconds: _HistogramLike

    @classmethod
    def null(cls) -> CacheMetrics:
        """Children that record nothing (a cache built without metric families)."""
        n = _Null()
        return cls(n, n, n, n, n, n, n, n, n, n, n, n, n, n)


class CacheMetricFamilies:
    """The `cache_*` metric families on one registry, shared by every cache on it.

    Build exactly one per registry; `for_cache(name)` hands each cache its
    labelled children.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.hits = Counter(
            "cache_hits_total", "Lookups answered with a fresh cached value.", ["cache"],
            registry=registry,
        )
        self.misses = Counter(
            "cache_misses_total", "Lookups that found no servable value.", ["cache"],
            registry=registry,
        )
        self.stale_hits = Counter(
            "cache_stale_hits_total",
            "Lookups answered with a value past its soft TTL (a refresh runs in the background).",
            ["cache"], registry=registry,
        )
        self.coalesced = Counter(
            "cache_coalesced_loads_total",
            "Misses that joined a load already in flight for the same key (single flight).",
            ["cache"], registry=registry,
        )
        self.evictions = Counter(
            "cache_evictions_total", "Entries removed, by cause (size, ttl, invalidation).",
            ["cache", "cause"], registry=registry,
        )
        self.load_failures = Counter(
            "cache_load_failures_total",
            "Loader calls that raised, by kind (miss: callers saw the error; refresh: stale kept).",
            ["cache", "kind"], registry=registry,
        )
        self.rejected = Counter(
            "cache_rejected_total",
            "Values not stored: over the byte limit or not measurable.", ["cache"],
            registry=registry,
        )
        self.discarded_writes = Counter(
            "cache_discarded_writes_total",
            "Values not stored because their key was invalidated while they were being loaded.",
            ["cache"], registry=registry,
        )
        self.entries = Gauge(
            "cache_entries", "Entries held right now.", ["cache"], registry=registry,
            multiprocess_mode="livesum",
        )
        self.bytes = Gauge(
            "cache_bytes", "Serialized size of the values held right now.", ["cache"],
            registry=registry, multiprocess_mode="livesum",
        )
        self.load_seconds = Histogram(
            "cache_load_seconds", "Time spent in a loader (miss or background refresh).",
            ["cache"], buckets=LOAD_BUCKETS, registry=registry,
        )

    def for_cache(self, name: str) -> CacheMetrics:
        """The labelled children for the cache called `name` (created on first use)."""
        return CacheMetrics(
            hits=self.hits.labels(name),
            misses=self.misses.labels(name),
            stale_hits=self.stale_hits.labels(name),
            coalesced=self.coalesced.labels(name),
            evictions_size=self.evictions.labels(name, "size"),
            evictions_ttl=self.evictions.labels(name, "ttl"),
            evictions_invalidation=self.evictions.labels(name, "invalidation"),
            load_failures=self.load_failures.labels(name, "miss"),
            refresh_failures=self.load_failures.labels(name, "refresh"),
            rejected=self.rejected.labels(name),
            discarded_writes=self.discarded_writes.labels(name),
            entries=self.entries.labels(name),
            bytes=self.bytes.labels(name),
            load_seconds=self.load_seconds.labels(name),
        )
