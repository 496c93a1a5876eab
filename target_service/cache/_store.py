"""The bounded LRU mapping under `MemoryCache`: cachetools plus an entry-count limit.

`cachetools.LRUCache` keeps the recency order and enforces one budget, `maxsize`,
measured with `getsizeof`. We spend that budget on bytes (each entry carries
its measured size) and add the second limit, the number of entries, on top, so
a flood of tiny values cannot grow the key overhead without bound. Every
capacity eviction goes through `popitem()`, which reports it to the owner so
statistics and the tag index stay exact.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from typing import Any

from cachetools import Cache, LRUCache


class Entry:
    """One cached value with its size, deadlines and tags (slotted: there are many)."""

    __slots__ = ("hard_deadline", "refresh_after", "size", "soft_deadline", "tags", "value")

    def __init__(
        self,
        value: Any,
        size: int,
        soft_deadline: float,
        hard_deadline: float,
        tags: tuple[Hashable, ...],
    ) -> None:
        self.value = value
        self.size = size
        self.soft_deadline = soft_deadline
        """Served as a fresh HIT before this instant, as STALE after it."""
        self.hard_deadline = hard_deadline
        """Never served at or after this instant."""
        self.refresh_after = soft_deadline
        """No background refresh is started before this instant (moved on refresh failure)."""
        self.tags = tags


class LRUStore(LRUCache):
    """An LRU mapping key -> `Entry` bounded by entry count and by total entry size.

    `on_evict(key, entry)` is called for every entry pushed out for capacity.
    Raises `ValueError` (like cachetools) for an entry larger than `max_bytes`.
    """

    def __init__(
        self,
        max_entries: int,
        max_bytes: int | None,
        on_evict: Callable[[Hashable, Entry], None],
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        if max_bytes is not None and max_bytes < 1:
            raise ValueError("max_bytes must be at least 1 (or None for no byte limit)")
        super().__init__(maxsize=math.inf if max_bytes is None else max_bytes)
        self.max_entries = max_entries
        self._on_evict = on_evict

    def getsizeof(self, value: Entry) -> int:  # type: ignore[override]
        return value.size

    def __setitem__(self, key: Hashable, value: Entry) -> None:  # type: ignore[override]
        if value.size > self.maxsize:
            raise ValueError("value too large")
        if key not in self:
            while len(self) >= self.max_entries:
                self.popitem()
        super().__setitem__(key, value)

    def popitem(self) -> tuple[Hashable, Entry]:
        key, entry = super().popitem()
        self._on_evict(key, entry)
        return key, entry

    def peek(self, key: Hashable) -> Entry | None:
        """The entry without touching its recency (for scans and bookkeeping)."""
        if key in self:
            return Cache.__getitem__(self, key)  # the base lookup does not touch the LRU order
        return None
