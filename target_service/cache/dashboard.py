"""Cache-first overview and analytics, stored as ready-to-send JSON bytes.

Keys are `(namespace, SCHEMA_VERSION, user_id, *canonical params)`: the user
id is in every key (two users can never share an entry, and a user's entries
can be evicted by tag in one step), and bumping `SCHEMA_VERSION` when a
response shape changes makes old entries unreachable. Values are the encoded
response body, so a hit costs a lookup and a memcpy, not a re-serialization.

Freshness: every write that touches a user evicts that user's entries (on
commit in the writing process, and in every process through the
`user_data_changed` notification); the overview, whose KPIs come from the
materialized view, is evicted once more when `kpi_refreshed` says the view
now includes that user's change. A load that started before an eviction
never writes its result (MemoryCache's generations), so neither step can be
undone by a request racing it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date

from target_service.cache.memory import CacheStatus, MemoryCache, user_tag

SCHEMA_VERSION = 1
Loader = Callable[[], Awaitable[bytes]]


class DashboardCache:
    """The overview and analytics entries of every user, in one bounded cache."""

    def __init__(self, cache: MemoryCache, *, overview_ttl: float, overview_soft_ttl: float,
                 analytics_ttl: float, analytics_soft_ttl: float) -> None:
        self.cache = cache
        self.overview_ttl = overview_ttl
        self.overview_soft_ttl = overview_soft_ttl
        self.analytics_ttl = analytics_ttl
        self.analytics_soft_ttl = analytics_soft_ttl

    @staticmethod
    def overview_key(user_id: int) -> tuple:
        return ("overview", SCHEMA_VERSION, user_id)

    @staticmethod
    def analytics_key(user_id: int, start: date, end: date, granularity: str) -> tuple:
        return ("analytics", SCHEMA_VERSION, user_id, start.isoformat(), end.isoformat(),
                granularity)

    async def overview(self, user_id: int, loader: Loader) -> tuple[bytes, CacheStatus]:
        return await self.cache.get_or_load(self.overview_key(user_id), loader,
                                            ttl=self.overview_ttl,
                                            soft_ttl=self.overview_soft_ttl)

    async def analytics(self, user_id: int, start: date, end: date, granularity: str,
                        loader: Loader) -> tuple[bytes, CacheStatus]:
        return await self.cache.get_or_load(self.analytics_key(user_id, start, end, granularity),
                                            loader, ttl=self.analytics_ttl,
                                            soft_ttl=self.analytics_soft_ttl)

    def has_overview(self, user_id: int) -> bool:
        return self.overview_key(user_id) in self.cache

    def evict_user(self, user_id: int) -> int:
        """Everything of one user (their data changed)."""
        return self.cache.invalidate_tag(user_tag(user_id))

    def evict_overview(self, user_id: int) -> bool:
        """The overview only (the KPI view now includes the user's change)."""
        return self.cache.invalidate(self.overview_key(user_id))

    def overview_users(self) -> list[int]:
        """Whose overviews are held now (to re-warm them after evicting them all)."""
        return [key[2] for key in self.cache.snapshot_keys()
                if isinstance(key, tuple) and key[:2] == ("overview", SCHEMA_VERSION)]

    def evict_all_overviews(self) -> int:
        return self.cache.invalidate_prefix(("overview", SCHEMA_VERSION))

    def clear(self) -> int:
        return self.cache.clear()
