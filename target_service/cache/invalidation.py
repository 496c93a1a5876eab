"""Evicts cache entries when the database says a user's data changed.

Each service process holds one dedicated connection (not a pooled one: the
pool resets connections on release, which would drop the LISTEN) and
listens on two channels:

* `user_data_changed` (`<table>:<user_id>`, migration 0104): evict everything
  derived from that user's rows, in every cache; `agents.snapshot:<user_id>`
  (migration 0106: only stored ElevenLabs snapshots changed) evicts only that
  user's agent list, the one entry that holds them;
* `kpi_refreshed` (`<id>,<id>,...` or `*`, from the KPI refresher): the view
  now includes those users' changes, so evict their overviews once more (a
  request between the write and the refresh may have cached old KPIs) and
  re-warm the ones that were hot;
* `api_key_changed` (`<user_id>` or `*`, migration 0105): a user's API key or
  name changed, or the user was removed: the auth cache forgets that user's
  keys, so an old key is refused from the next request on.

Notifications sent while the connection is down are lost, and nothing tells
us which. So on every (re)connect, before trusting the feed again, the
listener clears every entry derived from our data, API-key lookups included.
A closed socket (a restart, `pg_terminate_backend`) is noticed at once
(asyncpg's termination callback wakes the keepalive), a server that hangs by
a keepalive `SELECT 1` each second that must answer within `probe_timeout`;
connects time out too, and reconnects back off from `backoff` up to
`RECONNECT_MAX_S`, so the feed is back within about two seconds of the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import asyncpg

from target_service.background import ConnectionTask
from target_service.cache.caches import Caches
from target_service.db.notifications import (
    API_KEY_CHANGED,
    KPI_REFRESHED,
    SNAPSHOT_ONLY,
    USER_DATA_CHANGED,
    parse_key_owner,
    parse_refreshed,
    parse_user_change,
)
from target_service.telemetry import ServiceMetrics

log = logging.getLogger(__name__)
CHANNELS = (USER_DATA_CHANGED, KPI_REFRESHED, API_KEY_CHANGED)
CONNECT_TIMEOUT_S = 5.0
REWARM_AFTER_ALL = 50
"""After `kpi_refreshed *` evicts every overview, this many of them are loaded again."""
RECONNECT_MAX_S = 2.0
"""The backoff's cap: with the database back, the feed is back within about this long."""


class InvalidationListener(ConnectionTask):
    """A background task; `start()` in the lifespan, `stop()` on shutdown."""

    task_name = "cache-invalidation"

    def __init__(self, dsn: str, caches: Caches, metrics: ServiceMetrics, *,
                 on_overview_evicted: Callable[[int], None] | None = None,
                 backoff: float = 0.5, keepalive: float = 1.0,
                 probe_timeout: float = 3.0) -> None:
        super().__init__(backoff, RECONNECT_MAX_S)
        self.dsn = dsn
        self.caches = caches
        self.metrics = metrics
        self.on_overview_evicted = on_overview_evicted
        self.keepalive = keepalive
        self.probe_timeout = probe_timeout
        self.connected = asyncio.Event()
        self.closed = asyncio.Event()
        """Set when the current connection closes under the task (its termination callback)."""

    # ---- notification handlers (run on the event loop, never block) -------------

    def on_user_changed(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        change = parse_user_change(payload)
        if change is None:
            log.warning("ignoring malformed change notification %r", payload)
            return
        table, user_id = change
        if table == SNAPSHOT_ONLY:
            evicted = self.caches.evict_agent_list(user_id)
        else:
            evicted = self.caches.evict_user(user_id)
        self.metrics.cache_invalidations.labels(USER_DATA_CHANGED).inc()
        if evicted:
            log.debug("evicted %d entries of user %d (%s)", evicted, user_id, payload)

    def on_kpi_refreshed(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        self.metrics.cache_invalidations.labels(KPI_REFRESHED).inc()
        dashboard = self.caches.dashboard
        if dashboard is None:
            return
        users = parse_refreshed(payload)
        if users is None and payload not in ("", "*"):
            log.warning("malformed kpi_refreshed notification %r: evicting every overview",
                        payload)
        if users is None:  # everyone (after a reconnect, a new day): re-warm the hot ones
            hot = dashboard.overview_users()[:REWARM_AFTER_ALL]
            dashboard.evict_all_overviews()
            if self.on_overview_evicted is not None:
                for user_id in hot:
                    self.on_overview_evicted(user_id)
            return
        for user_id in users:
            if dashboard.evict_overview(user_id) and self.on_overview_evicted is not None:
                self.on_overview_evicted(user_id)

    def on_key_changed(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        self.metrics.cache_invalidations.labels(API_KEY_CHANGED).inc()
        user_id = parse_key_owner(payload)
        if user_id is None and payload != "*":
            log.warning("malformed api_key_changed notification %r: forgetting every key",
                        payload)
        self.caches.evict_api_keys(user_id)

    # ---- connection lifecycle ------------------------------------------------

    def _on_close(self) -> None:
        self.connected.clear()
        self.metrics.cache_listener_connected.set(0)

    def _count_reconnect(self) -> None:
        self.metrics.cache_listener_reconnects.inc()

    async def _serve(self) -> None:
        """Connect, LISTEN, clear what cannot be trusted, then keep the connection alive."""
        self._conn = conn = await asyncpg.connect(
            self.dsn, timeout=CONNECT_TIMEOUT_S,
            server_settings={"application_name": "target_service:cache_listener"})
        self.closed = closed = asyncio.Event()
        conn.add_termination_listener(lambda _conn: closed.set())
        await conn.add_listener(USER_DATA_CHANGED, self.on_user_changed)
        await conn.add_listener(KPI_REFRESHED, self.on_kpi_refreshed)
        await conn.add_listener(API_KEY_CHANGED, self.on_key_changed)
        # listening from here on; whatever happened before cannot be trusted
        cleared = self.caches.clear_derived()
        self.connections += 1
        self.connected.set()
        self.metrics.cache_listener_connected.set(1)
        log.info("cache invalidation feed connected (cleared %d entries)", cleared)
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.keepalive):  # not wait_for: background.py
                    await closed.wait()
            if closed.is_set() or conn.is_closed():
                raise ConnectionError("the invalidation feed's connection was closed")
            async with asyncio.timeout(self.probe_timeout):
                await conn.fetchval("SELECT 1")
