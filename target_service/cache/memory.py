"""`MemoryCache`: the in-memory cache the service uses, with asynchronous loading.

It is a `BoundedCache` (bounded LRU storage, soft/hard TTLs, tags, invalidation
that sticks, statistics; see bounded.py) plus the two behaviours that keep a
dashboard's tail latency flat under load:

* **Single flight**: concurrent misses for one key share one load task. Every
  caller awaits it through `asyncio.shield`, so a client that disconnects
  (cancelling its request) does not cancel the load the others wait for; the
  loader's exception reaches every waiter and nothing is cached.
* **Stale-while-revalidate**: past the soft TTL the old value is served as
  STALE while exactly one background refresh runs (single-flighted with any
  concurrent miss); a failed refresh keeps the stale value until the hard TTL
  and is counted. Background tasks are tracked and cancelled by `close()`.

A load that started before an invalidation covering its key never writes its
result into the cache (its waiters still get it), and later callers do not
join it: they start a fresh load. That is what keeps a user's entries from
being re-filled with pre-write data after the write evicted them. It cannot
see staleness the source itself still has: if reads go through a materialized
view refreshed *after* the commit, a load between the commit and the refresh
starts after the first eviction and reads old numbers, so evict that user again
once the refresh has completed (or evict only then).

Traced when given a `tracer` (None: no tracing work at all): a `get_or_load`
answered from memory (hit or stale) is an event `cache.lookup <name>` with its
`cache.result` on the caller's span (`tracing.lookup_event`: a span would cost
more than the lookup); one that misses is a `cache.lookup <name>` span with
`cache.result` miss and `cache.single_flight` leader/joined; a joined caller's
wait is a `cache.single_flight.wait` span, a load a `cache.load` span (its
queries nest under it), and a stale entry's background refresh a
`cache.refresh` span in a trace of its own, linked to the caller's span.

Concurrency model: one event loop, no threads. All bookkeeping is synchronous
code between awaits; the only awaits are on loaders and load tasks.

Typical use (keys are tuples `(namespace, schema_version, user_id, *params)`)::

    families = CacheMetricFamilies(registry)            # once per registry
    cache = MemoryCache("dashboard", max_entries=10_000, max_bytes=64 << 20,
                        default_ttl=30, default_soft_ttl=10,
                        tags_of=tags_from_key(2), metrics=families)
    value, status = await cache.get_or_load(key, lambda: load_overview(user_id))
    response.headers["X-Cache"] = status
    ...
    cache.invalidate_tag(user_tag(user_id))            # after a write for that user
    ...
    await cache.close()                                # in the lifespan shutdown
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import TypeVar

from opentelemetry.trace import Span, Tracer

from target_service.tracing import (
    background_span,
    cache_attributes,
    current_link,
    lookup_event,
    recording_span,
)

from .bounded import BoundedCache
from .generations import Generation
from .keys import CacheStatus, pickled_size, tags_from_key, user_tag
from .metrics import CacheMetricFamilies, CacheStats

__all__ = [
    "BoundedCache",
    "CacheMetricFamilies",
    "CacheStats",
    "CacheStatus",
    "Generation",
    "Loader",
    "MemoryCache",
    "pickled_size",
    "tags_from_key",
    "user_tag",
]

logger = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
Loader = Callable[[], Awaitable[V]]
"""A zero-argument coroutine function producing the value of one key."""


class _Flight:
    """One in-flight load of one key, shared by every caller that missed it."""

    __slots__ = ("generation", "key", "refresh", "size", "soft_ttl", "tags", "task", "ttl")

    def __init__(self, key, tags, generation, ttl, soft_ttl, size, refresh) -> None:
        self.key = key
        self.tags: tuple = tags
        self.generation: Generation = generation
        self.ttl: float = ttl
        self.soft_ttl: float = soft_ttl
        self.size: int | None = size
        self.refresh: bool = refresh
        self.task: asyncio.Task = None  # type: ignore[assignment]  # set right after creation


class MemoryCache(BoundedCache[K, V]):
    """A `BoundedCache` with single-flight loading and stale-while-revalidate.

    Takes every `BoundedCache` argument, plus `refresh_retry_interval`: after a
    failed background refresh, how long the stale value is served before another
    refresh is tried (so a failing upstream is not hit on every request), and
    `tracer` (None: untraced).
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
        refresh_retry_interval: float = 1.0,
        tracer: Tracer | None = None,
    ) -> None:
        super().__init__(
            name, max_entries=max_entries, max_bytes=max_bytes, default_ttl=default_ttl,
            default_soft_ttl=default_soft_ttl, sizeof=sizeof, tags_of=tags_of, metrics=metrics,
            clock=clock, max_generation_age=max_generation_age,
        )
        if refresh_retry_interval < 0:
            raise ValueError("refresh_retry_interval must not be negative")
        self._refresh_retry_interval = refresh_retry_interval
        self._inflight: dict[K, _Flight] = {}
        self._tasks: set[asyncio.Task] = set()
        self._closed = False
        self.tracer = tracer

    async def get_or_load(
        self,
        key: K,
        loader: Loader[V],
        *,
        ttl: float | None = None,
        soft_ttl: float | None = None,
        tags: Iterable[Hashable] = (),
        size: int | None = None,
    ) -> tuple[V, CacheStatus]:
        """The cached value, or the loader's result shared by all concurrent misses.

        Returns `(value, HIT | STALE | MISS)`. A STALE answer starts (at most) one
        background refresh. The loader's exception propagates to every waiting
        caller and is not cached; cancelling one caller leaves the load running.

        The loader runs in its own task and may outlive the request that started
        it, so it must acquire what it needs itself (`async with pool.acquire()`
        inside the loader), never borrow the caller's connection or session.
        Keys must not collide across tenants: put the user id in every key.
        """
        now = self._clock()
        found = self._counted_find(key, now)
        if found is not None:  # traced as an event: see tracing.lookup_event
            entry, status = found
            if self.tracer is not None and (span := recording_span()) is not None:
                lookup_event(span, self.name, {**cache_attributes(self.name, key),
                                               "cache.result": status.lower()})
            if (status is CacheStatus.STALE and now >= entry.refresh_after and not self._closed
                    and self._live_flight(key) is None):
                self._start_flight(key, loader, ttl, soft_ttl, tags, size, refresh=True)
            return entry.value, status
        if self.tracer is None:
            return await self._miss(key, loader, ttl, soft_ttl, tags, size, None)
        with self.tracer.start_as_current_span(f"cache.lookup {self.name}",
                                               attributes=cache_attributes(self.name, key)) as span:
            span.set_attribute("cache.result", "miss")
            return await self._miss(key, loader, ttl, soft_ttl, tags, size, span)

    async def _miss(self, key: K, loader: Loader[V], ttl: float | None,
                    soft_ttl: float | None, tags: Iterable[Hashable], size: int | None,
                    span: Span | None) -> tuple[V, CacheStatus]:
        if self._closed:  # shutting down: no new tasks, load inline
            generation = self._log.current()
            value = await loader()
            self.set(key, value, ttl=ttl, soft_ttl=soft_ttl, tags=tags, size=size,
                     generation=generation)
            return value, CacheStatus.MISS
        flight = self._live_flight(key)
        if flight is None:
            flight = self._start_flight(key, loader, ttl, soft_ttl, tags, size, refresh=False)
        else:
            self._coalesced += 1
            self._m.coalesced.inc()
            if span is not None and self.tracer is not None:
                span.set_attribute("cache.single_flight", "joined")
                with self.tracer.start_as_current_span("cache.single_flight.wait",
                                                       attributes={"cache.name": self.name}):
                    return await asyncio.shield(flight.task), CacheStatus.MISS
        if span is not None:
            span.set_attribute("cache.single_flight", "leader")
        return await asyncio.shield(flight.task), CacheStatus.MISS

    def refresh_in_background(
        self,
        key: K,
        loader: Loader[V],
        *,
        ttl: float | None = None,
        soft_ttl: float | None = None,
        tags: Iterable[Hashable] = (),
        size: int | None = None,
    ) -> bool:
        """Start a tracked background load of `key` unless one is already in flight.

        For batch readers (`get_many`) that found STALE entries. Returns True if a
        new refresh was started. Its failure is counted and logged, never raised.
        """
        if self._closed or self._live_flight(key) is not None:
            return False
        self._start_flight(key, loader, ttl, soft_ttl, tags, size, refresh=True)
        return True

    @property
    def in_flight(self) -> int:
        """Loads and refreshes currently running (including ones detached by invalidation)."""
        return len(self._tasks)

    def _live_flight(self, key: K) -> _Flight | None:
        flight = self._inflight.get(key)
        if flight is None or not self._log.allows(key, flight.tags, flight.generation):
            return None  # an invalidated load is not joined: its result is pre-invalidation
        return flight

    def _start_flight(self, key, loader, ttl, soft_ttl, tags, size, *, refresh: bool) -> _Flight:
        hard, soft = self._ttls(ttl, soft_ttl)
        flight = _Flight(key, self._tags_for(key, tags), self._log.current(), hard, soft, size,
                         refresh)
        kind = "refresh" if refresh else "load"
        task = asyncio.get_running_loop().create_task(
            self._run_flight(flight, loader), name=f"cache:{self.name}:{kind}"
        )
        flight.task = task
        self._inflight[key] = flight
        self._tasks.add(task)
        task.add_done_callback(functools.partial(self._flight_done, flight))
        return flight

    async def _run_flight(self, flight: _Flight, loader: Loader[V]) -> V:
        if self.tracer is None:
            return await self._load(flight, loader)
        attrs = cache_attributes(self.name, flight.key)
        if flight.refresh:  # off the request path: a trace of its own
            with background_span(self.tracer, f"cache.refresh {self.name}", attrs,
                                 current_link()):
                return await self._load(flight, loader)
        with self.tracer.start_as_current_span(f"cache.load {self.name}", attributes=attrs):
            return await self._load(flight, loader)

    async def _load(self, flight: _Flight, loader: Loader[V]) -> V:
        started = time.perf_counter()
        try:
            value = await loader()
        except Exception:
            if flight.refresh:
                self._refresh_failures += 1
                self._m.refresh_failures.inc()
                entry = self._store.peek(flight.key)
                if entry is not None:
                    entry.refresh_after = self._clock() + self._refresh_retry_interval
                logger.warning("cache %s: background refresh of %r failed", self.name,
                               flight.key, exc_info=True)
            else:
                self._load_failures += 1
                self._m.load_failures.inc()
            raise
        finally:
            elapsed = time.perf_counter() - started
            self._load_seconds += elapsed
            self._m.load_seconds.observe(elapsed)
            if self._inflight.get(flight.key) is flight:
                del self._inflight[flight.key]
        self._loads += 1
        self._put(flight.key, value, flight.ttl, flight.soft_ttl, flight.tags, flight.size,
                  flight.generation)
        self._sync_gauges()
        return value

    def _flight_done(self, flight: _Flight, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if self._inflight.get(flight.key) is flight:  # cancelled before it ever ran
            del self._inflight[flight.key]
        if not task.cancelled():
            task.exception()  # retrieved: waiters (if any) got it; no "never retrieved" noise

    async def close(self, timeout: float = 5.0) -> None:
        """Cancel every load and background refresh and wait (up to `timeout`) for them.

        Afterwards the cache still answers lookups and writes, but starts no tasks:
        misses load inline and stale values are served without a refresh.
        """
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        self._inflight.clear()
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=timeout)
            if pending:
                logger.warning("cache %s: %d loads ignored cancellation", self.name, len(pending))

