"""Keeps the `user_kpi_summary` materialized view fresh, cheaply and boundedly.

Statement-level triggers NOTIFY `kpi_dirty` on every write statement. This
task LISTENs on a dedicated connection (not a pooled one: a pooled connection
is reset on release and would drop the LISTEN) and debounces: it refreshes
`debounce` seconds after the last notification, but never later than
`max_delay` after the first unrefreshed one, so constant writes cannot starve
the view. Staleness is therefore bounded by `max_delay` + one refresh, and the
`kpi_view_staleness_seconds` gauge shows it live.

The refresh itself runs as a job on the service's job queue (deduplicated:
a change during a refresh schedules exactly one rerun; a failure is retried
with backoff), on a pooled connection, in a transaction whose NOTIFY is
delivered at commit.

Only one service process refreshes: the one holding a session advisory lock
on its listener connection (the others retry for the lock, so a crashed
leader is replaced within `leader_retry` seconds). It also listens to
`user_data_changed` to learn *whose* KPIs changed, and after each refresh
NOTIFYs `kpi_refreshed` with those user ids (or `*`), which the caches use to
evict KPI entries *after* the new numbers are visible, so a request in
between cannot leave stale KPIs cached.

Surviving the database going away (a restart, `pg_terminate_backend`, a server
that hangs): the dedicated connection is watched (asyncpg's termination
callback wakes the loop the moment the socket closes, and a `SELECT 1` every
`KEEPALIVE_S` with a `PROBE_TIMEOUT_S` limit notices a server that stopped
answering), connects have a timeout, and a lost connection is replaced with a
backoff capped at `RECONNECT_MAX_S`, so the refresher is back within about two
seconds of the database. Notifications sent while the connection is down are
lost, so every connection of the leader refreshes for every user
(`kpi_refreshed *`: the caches drop every overview and re-warm the hot ones),
and a *re*connection does so at once, without the debounce.
Its own gauges say so: `kpi_refresher_connected`, `kpi_refresher_leader`,
`kpi_refresher_reconnects_total` (`RefresherMetrics`).

Traced when given a `tracer`: each refresh is a `kpi_view.refresh` span (inside
its job's span) with how many users it makes visible and its outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref

import asyncpg
from opentelemetry.trace import Span, Tracer
from prometheus_client import CollectorRegistry, Counter, Gauge

from target_service.background import ConnectionTask
from target_service.db.notifications import (
    KPI_DIRTY,
    KPI_REFRESHED,
    USER_DATA_CHANGED,
    parse_user_change,
    refreshed_payload,
)
from target_service.db.pool import Database
from target_service.domain import kpi_window_start
from target_service.errors import DatabaseUnavailable
from target_service.jobs import JobQueue, RetryPolicy
from target_service.telemetry import ServiceMetrics
from target_service.tracing import maybe_span

log = logging.getLogger(__name__)
LEADER_LOCK = 0x6B70_6931  # "kpi1"
REFRESH_SQL = "REFRESH MATERIALIZED VIEW CONCURRENTLY user_kpi_summary"
KPI_TABLES = frozenset({"calls", "leads", "lead_analytics"})
KEEPALIVE_S = 1.0
"""How often an idle connection is asked `SELECT 1` (a dead one is noticed sooner: its
termination callback wakes the loop)."""
PROBE_TIMEOUT_S = 3.0
"""A keepalive or lock query slower than this means a server that hangs: reconnect."""
CONNECT_TIMEOUT_S = 5.0
RECONNECT_BASE_S, RECONNECT_MAX_S = 0.25, 2.0
"""Backoff between connection attempts: doubling from the base, never above the cap, so
the refresher is back within about `RECONNECT_MAX_S` of the database (the freshness bound
after an outage is 5 s)."""
REFRESH_RETRY = RetryPolicy(attempts=3, base_delay=0.25, max_delay=1.0, jitter=0.2)
"""A failed refresh is retried soon; after the last attempt the loop submits it again."""
_METRICS: weakref.WeakKeyDictionary[CollectorRegistry, RefresherMetrics] = (
    weakref.WeakKeyDictionary())


class RefresherMetrics:
    """The refresher's connection health, one set per registry (`RefresherMetrics.of`).

    Its own families rather than `ServiceMetrics`'s, so a process without a refresher
    (the naive profile) exports none of them instead of a misleading 0.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.connected = Gauge(
            "kpi_refresher_connected",
            "1 while the KPI refresher's dedicated connection is up (leader or not).",
            registry=registry, multiprocess_mode="livemin")
        self.leader = Gauge(
            "kpi_refresher_leader", "1 in the process that holds the refresh lock.",
            registry=registry, multiprocess_mode="livesum")
        self.reconnects = Counter(
            "kpi_refresher_reconnects_total",
            "Times the KPI refresher's connection was lost (the leader refreshes at once "
            "when it is back).", registry=registry)

    @classmethod
    def of(cls, registry: CollectorRegistry) -> RefresherMetrics:
        """The registry's set, created on first use (a registry refuses a family twice)."""
        if registry not in _METRICS:
            _METRICS[registry] = cls(registry)
        return _METRICS[registry]


class ConnectionLost(ConnectionError):
    """The dedicated connection closed under the loop (server restart, terminated backend)."""


class KpiRefresher(ConnectionTask):
    """A background task; `start()` in the lifespan, `stop()` on shutdown."""

    task_name = "kpi-refresher"

    def __init__(self, dsn: str, db: Database, jobs: JobQueue, metrics: ServiceMetrics, *,
                 debounce: float = 0.2, max_delay: float = 1.0, leader_retry: float = 2.0,
                 rollover_check: float = 60.0, tracer: Tracer | None = None) -> None:
        super().__init__(RECONNECT_BASE_S, RECONNECT_MAX_S)
        self.tracer = tracer
        self.dsn = dsn
        self.db = db
        self.jobs = jobs
        self.metrics = metrics
        self.debounce = debounce
        self.max_delay = max_delay
        self.leader_retry = leader_retry
        self.rollover_check = rollover_check
        self.health = RefresherMetrics.of(metrics.registry)
        self.is_leader = False
        self.refresh_count = 0
        self._refresh_now = False
        self._first_dirty: float | None = None
        self._last_notify = 0.0
        self._users: set[int] = set()
        self._all_users = False
        self._submitted = False
        self._wake = asyncio.Event()
        self._refreshed = asyncio.Condition()

    def note_user(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        """Remember whose KPIs the next refresh makes visible (`user_data_changed`)."""
        change = parse_user_change(payload)
        if change is not None and change[0] in KPI_TABLES:
            self._users.add(change[1])

    def mark_dirty(self, *_: object) -> None:
        """Record a change (listener callback); the loop refreshes after the debounce."""
        now = time.monotonic()
        if self._first_dirty is None:
            self._first_dirty = now
        self._last_notify = now
        self._wake.set()

    async def wait_for_refresh(self, after: int, timeout: float) -> bool:
        """Wait until more than `after` refreshes happened (tests and the write path)."""
        async with self._refreshed:
            try:
                await asyncio.wait_for(
                    self._refreshed.wait_for(lambda: self.refresh_count > after), timeout)
                return True
            except TimeoutError:
                return False

    @property
    def connected(self) -> bool:
        """The dedicated connection is up (whether or not this process leads)."""
        return self._conn is not None and not self._conn.is_closed()

    def _on_close(self) -> None:
        self.is_leader = False
        self.health.connected.set(0)
        self.health.leader.set(0)

    def _count_reconnect(self) -> None:
        self.health.reconnects.inc()

    def _on_loss(self) -> None:
        if self.is_leader:
            self._all_users = True  # whatever changes now, nobody hears of them
            self.mark_dirty()
        self._update_staleness()

    async def _probe(self, sql: str, *args: object) -> object:
        """A query on the dedicated connection, bounded: a server that hangs is lost."""
        assert self._conn is not None
        async with asyncio.timeout(PROBE_TIMEOUT_S):  # not wait_for: see background.py
            return await self._conn.fetchval(sql, *args)

    def _check_open(self) -> None:
        if self._conn is None or self._conn.is_closed():
            raise ConnectionLost("the refresher's connection was closed")

    async def _serve(self) -> None:
        """Connect, wait to lead (one refresher per database), then refresh until lost."""
        self._conn = await asyncpg.connect(
            self.dsn, timeout=CONNECT_TIMEOUT_S, server_settings={
                "application_name": "target_service:kpi_refresher", "timezone": "UTC"})
        self._conn.add_termination_listener(lambda _conn: self._wake.set())
        self.connections += 1
        self.health.connected.set(1)
        while not await self._probe("SELECT pg_try_advisory_lock($1)", LEADER_LOCK):
            await asyncio.sleep(self.leader_retry)  # the lock query is our keepalive here
        self.is_leader = True
        self.health.leader.set(1)
        await self._conn.add_listener(USER_DATA_CHANGED, self.note_user)
        await self._conn.add_listener(KPI_DIRTY, self.mark_dirty)
        self._all_users = True  # anything that changed while nobody listened
        # after a reconnect the view may lack what was written meanwhile: no debounce
        self._refresh_now = self.connections > 1
        self.mark_dirty()
        next_rollover = time.monotonic() + self.rollover_check
        next_probe = time.monotonic() + KEEPALIVE_S
        while True:
            self._check_open()
            timeout = max(0.05, min(next_rollover, next_probe) - time.monotonic())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(timeout, 0.5)):  # not wait_for: background.py
                    await self._wake.wait()
            self._check_open()
            self._update_staleness()
            if time.monotonic() >= next_probe:
                await self._probe("SELECT 1")
                next_probe = time.monotonic() + KEEPALIVE_S
            if time.monotonic() >= next_rollover:
                next_rollover = time.monotonic() + self.rollover_check
                if await self._window_rolled():
                    self._all_users = True  # a new day: everyone's 30-day window moved
                    self.mark_dirty()
            if self._first_dirty is None or self._submitted:
                self._wake.clear()
                continue
            due = min(self._last_notify + self.debounce, self._first_dirty + self.max_delay)
            if not self._refresh_now and time.monotonic() < due:
                await asyncio.sleep(min(due - time.monotonic(), KEEPALIVE_S))
                continue
            # the job queue runs it (retries with backoff on failure); a change that
            # arrives while it runs schedules exactly one rerun
            self._submitted = self.jobs.submit("kpi_refresh", "kpi_refresh", self._refresh,
                                               retry=REFRESH_RETRY)
            if not self._submitted:  # refused (full or closing queue): do not spin
                await asyncio.sleep(0.1)

    async def _window_rolled(self) -> bool:
        current = await self._probe("SELECT min(window_start) FROM user_kpi_summary")
        return current is not None and current < kpi_window_start()

    async def _refresh(self) -> None:
        """The job: claim what is pending now, refresh, then announce whose KPIs changed."""
        with maybe_span(self.tracer, "kpi_view.refresh") as span:
            ok = False
            try:
                await self._claim_and_refresh(span)
                ok = True
            finally:
                if span is not None:
                    span.set_attribute("kpi.outcome", "ok" if ok else "error")

    async def _claim_and_refresh(self, span: Span | None) -> None:
        first = self._first_dirty
        users, everyone = self._users, self._all_users
        self._first_dirty, self._users, self._all_users = None, set(), False
        self._submitted = self._refresh_now = False
        self._wake.set()  # let the loop see changes that arrive from now on
        start = time.monotonic()
        payload = refreshed_payload(users, everyone)
        if span is not None:
            span.set_attributes({"kpi.users": len(users), "kpi.all_users": everyone})
        try:
            async with self.db.acquire() as conn, conn.transaction():
                await conn.execute("SET LOCAL statement_timeout = 0")  # big views take time
                await conn.execute(REFRESH_SQL)
                # delivered at commit: only then are these users' changes visible
                await conn.execute("SELECT pg_notify($1, $2)", KPI_REFRESHED, payload)
        except (asyncpg.PostgresError, DatabaseUnavailable):
            self.metrics.kpi_refreshes.labels("error").inc()
            if self._first_dirty is None:
                self._first_dirty = first  # still pending: the job queue retries
            self._users |= users
            self._all_users |= everyone
            raise
        end = time.monotonic()
        self.metrics.kpi_refreshes.labels("ok").inc()
        self.metrics.kpi_refresh_duration.observe(end - start)
        if first is not None:
            self.metrics.kpi_change_to_visible.observe(end - first)
        self._update_staleness()
        async with self._refreshed:
            self.refresh_count += 1
            self._refreshed.notify_all()

    def _update_staleness(self) -> None:
        first = self._first_dirty
        self.metrics.kpi_staleness.set(0 if first is None else time.monotonic() - first)
