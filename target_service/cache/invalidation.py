"""Evicts cache entries when the database says a user's data changed.

Each service process holds one dedicated connection (not a pooled one: the
pool resets connections on release, which would drop the LISTEN) and
listens on two channels:

* `user_data_changed` (`<table>:<user_id>`, migration 0104): evict everything
  derived from that user's rows, in every cache;
* `kpi_refreshed` (`<id>,<id>,...` or `*`, from the KPI refresher): the view
  now includes those users' changes, so evict their overviews once more (a
  request between the write and the refresh may have cached old KPIs) and
  re-warm the ones that were hot.

Notifications sent while the connection is down are lost, and nothing tells
us which. So on every (re)connect, before trusting the feed again, the
listener clears every entry derived from our data. A keepalive query each
second notices a dead connection (e.g. `pg_terminate_backend`) quickly.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import asyncpg

from target_service.cache.caches import Caches
from target_service.background import ConnectionTask
from target_service.telemetry import ServiceMetrics

log = logging.getLogger(__name__)
CHANNELS = ("user_data_changed", "kpi_refreshed")


def parse_user_change(payload: str) -> int | None:
    """`calls:17` -> 17; None for anything malformed (logged, never fatal)."""
    _, _, user = payload.rpartition(":")
    return int(user) if user.isdigit() else None


def parse_refreshed(payload: str) -> list[int] | None:
    """`17,23` -> [17, 23]; `*` (or empty) -> None, meaning every user."""
    if payload in ("", "*"):
        return None
    return [int(p) for p in payload.split(",") if p.isdigit()]


class InvalidationListener(ConnectionTask):
    """A background task; `start()` in the lifespan, `stop()` on shutdown."""

    task_name = "cache-invalidation"

    def __init__(self, dsn: str, caches: Caches, metrics: ServiceMetrics, *,
                 on_overview_evicted: Callable[[int], None] | None = None,
                 backoff: float = 0.5, keepalive: float = 1.0) -> None:
        super().__init__()
        self.dsn = dsn
        self.caches = caches
        self.metrics = metrics
        self.on_overview_evicted = on_overview_evicted
        self.backoff = backoff
        self.keepalive = keepalive
        self.connected = asyncio.Event()
        self.connections = 0

    # ---- notification handlers (run on the event loop, never block) -------------

    def on_user_changed(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        user_id = parse_user_change(payload)
        if user_id is None:
            log.warning("ignoring malformed change notification %r", payload)
            return
        evicted = self.caches.evict_user(user_id)
        self.metrics.cache_invalidations.labels("user_data_changed").inc()
        if evicted:
            log.debug("evicted %d entries of user %d (%s)", evicted, user_id, payload)

    def on_kpi_refreshed(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        self.metrics.cache_invalidations.labels("kpi_refreshed").inc()
        dashboard = self.caches.dashboard
        if dashboard is None:
            return
        users = parse_refreshed(payload)
        if users is None:
            dashboard.evict_all_overviews()
            return
        for user_id in users:
            if dashboard.evict_overview(user_id) and self.on_overview_evicted is not None:
                self.on_overview_evicted(user_id)

    # ---- connection lifecycle ------------------------------------------------

    def _on_close(self) -> None:
        self.connected.clear()
        self.metrics.cache_listener_connected.set(0)

    async def _run(self) -> None:
        delay = self.backoff
        while True:
            before = self.connections
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                log.warning("cache invalidation feed lost (%s); reconnecting", exc)
            await self._close()
            self.metrics.cache_listener_reconnects.inc()
            if self.connections > before:
                delay = self.backoff  # it had worked: start the backoff over
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    async def _listen(self) -> None:
        self._conn = await asyncpg.connect(self.dsn, timeout=10, server_settings={
            "application_name": "target_service:cache_listener"})
        await self._conn.add_listener("user_data_changed", self.on_user_changed)
        await self._conn.add_listener("kpi_refreshed", self.on_kpi_refreshed)
        # listening from here on; whatever happened before cannot be trusted
        cleared = self.caches.clear_derived()
        self.connections += 1
        self.connected.set()
        self.metrics.cache_listener_connected.set(1)
        log.info("cache invalidation feed connected (cleared %d entries)", cleared)
        while True:
            await asyncio.sleep(self.keepalive)
            await asyncio.wait_for(self._conn.fetchval("SELECT 1"), self.keepalive * 5)
