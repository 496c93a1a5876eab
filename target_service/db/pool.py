"""The asyncpg pool, wrapped so every query is named, timed and bounded.

Why a wrapper: the harness judges the service by what it saw from the inside
(per-query counts and p95, pool waits), so every query goes through
`Database.fetch*` with a name that becomes a Prometheus label. The wrapper
also owns the session settings that matter for correctness and speed:

* `timezone=UTC`: every date bucket in the API is a UTC day or hour.
* `statement_timeout`: a runaway query fails instead of holding a connection.
* `plan_cache_mode=force_custom_plan` (optimized profile): asyncpg prepares
  every statement, and a generic plan cannot prove `created_at >= $2` implies a
  partial index's literal cutoff. Custom plans see the value and can.

Traced when given a `tracer`: a wait for a pooled connection is a
`db.pool.acquire` span (waiters, size, idle; an error on timeout; not made for
an acquire served at once from an idle connection, see `acquire`), and the
asyncpg spans of a named query carry its name as `db.query.name`
(`tracing.QUERY_NAME`). Without one, none of that work is done.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from opentelemetry.trace import StatusCode, Tracer
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from target_service.errors import DatabaseUnavailable
from target_service.settings import Settings
from target_service.span_redaction import QUERY_NAME
from target_service.telemetry import ServiceMetrics

log = logging.getLogger(__name__)

async def keep_session(conn: asyncpg.Connection) -> None:
    """The pool's reset with toggle `light_reset`: nothing beyond what asyncpg always does
    on release (roll back an open transaction, drop listeners). Without it asyncpg runs
    `Connection.get_reset_query()` on every release, a round trip to the server."""


ACQUIRE_SPAN_MIN_S = 0.001
"""An acquire this long is traced even when an idle connection was there (see `acquire`)."""

_CONNECT_ERRORS = (OSError, asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError,
                   asyncio.TimeoutError)

_LOST = (OSError, asyncpg.PostgresConnectionError, asyncpg.exceptions.OperatorInterventionError,
         asyncpg.exceptions.InsufficientResourcesError)
"""What asyncpg raises when the server, not the query, is the problem: refused or reset
sockets, a connection closed mid-query (class 08), the server shutting down, crashed or
not yet accepting connections (class 57: `AdminShutdownError`, `CannotConnectNowError`,
...), too many connections (class 53). The request may well succeed a moment later, so
the client gets a 503 with `Retry-After`, never a 500."""


def database_lost(exc: BaseException) -> bool:
    """Whether `exc` means the database is unreachable, restarting or overloaded (as
    opposed to a query that is wrong). A statement timeout is not: it has a 503 of its
    own (`query_timeout`)."""
    return isinstance(exc, _LOST) and not isinstance(exc, asyncpg.QueryCanceledError)


def _gone(conn: asyncpg.Connection) -> bool:
    """Whether a pooled connection is closed, or already detached from its proxy (asyncpg
    hands a terminated connection back to the pool itself)."""
    try:
        return conn.is_closed()
    except asyncpg.InterfaceError:  # "connection has been released back to the pool"
        return True


def server_settings(settings: Settings) -> dict[str, str]:
    """Session settings applied to every pooled connection."""
    values = {
        "application_name": "target_service",
        "timezone": "UTC",
        "statement_timeout": str(settings.pool.statement_timeout_ms),
    }
    if settings.flags.custom_plans:
        values["plan_cache_mode"] = "force_custom_plan"
    return values


class Database:
    """A named, timed, metered view of the pool. Built in the lifespan, closed there."""

    def __init__(self, pool: asyncpg.Pool, metrics: ServiceMetrics, settings: Settings,
                 tracer: Tracer | None = None) -> None:
        self.pool = pool
        self.metrics = metrics
        self.settings = settings
        self.tracer = tracer
        self._waiting = 0
        self._releasing: set[asyncio.Task] = set()
        metrics.db_pool_max.set(settings.pool.max_size)
        self._update_pool_gauges()

    @classmethod
    async def connect(cls, settings: Settings, metrics: ServiceMetrics, *,
                      tracer: Tracer | None = None) -> Database:
        """Open the pool, retrying with exponential backoff while the database starts."""
        dsn = settings.database_url.get_secret_value()
        retrying = AsyncRetrying(
            stop=stop_after_attempt(settings.pool.connect_attempts),
            wait=wait_exponential(multiplier=settings.pool.connect_backoff_s, max=5.0),
            retry=retry_if_exception_type(_CONNECT_ERRORS),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    pool = await asyncpg.create_pool(
                        dsn,
                        min_size=settings.pool.min_size,
                        max_size=settings.pool.max_size,
                        server_settings=server_settings(settings),
                        timeout=10,
                        reset=keep_session if settings.flags.light_reset else None,
                    )
        except (*_CONNECT_ERRORS, asyncpg.PostgresError) as exc:
            raise DatabaseUnavailable(f"cannot open the database pool: {exc}") from exc
        return cls(pool, metrics, settings, tracer)

    async def close(self) -> None:
        """Close the pool, waiting briefly for checked-out connections."""
        try:
            await asyncio.wait_for(self.pool.close(), timeout=10)
        except TimeoutError:
            self.pool.terminate()

    def _update_pool_gauges(self) -> None:
        size = self.pool.get_size()
        self.metrics.db_pool_size.set(size)
        self.metrics.db_pool_in_use.set(size - self.pool.get_idle_size())
        self.metrics.db_pool_waiting.set(self._waiting)

    async def _checkout(self, timeout: float) -> asyncpg.Connection:
        """`pool.acquire()` bounded by `timeout` (TimeoutError past it) without cancelling
        the caller's task.

        asyncpg's own `acquire(timeout=)` runs the wait under `asyncio.timeout`, which
        cancels the *request's* task when the deadline passes. When the deadline falls
        while the pool is opening a connection (a starved pool under a tiny timeout),
        the cancellation can land in asyncpg's connect, which turns it into an error of
        its own or lets a bare CancelledError out of the request (a 500), and a
        connection checked out at that instant is never given back. Here the checkout
        is a task of its own that the request only *waits* for: on the deadline it is
        cancelled, and a connection it gets anyway goes back to the pool.
        A request cancelled while waiting (its client left) does the same."""
        task = asyncio.get_running_loop().create_task(self._acquire_untimed())
        try:
            done, _ = await asyncio.wait((task,), timeout=timeout)
        except BaseException:
            self._abandon(task)
            raise
        if not done:
            self._abandon(task)
            raise TimeoutError(f"no pooled connection within {timeout:g}s")
        return task.result()

    async def _acquire_untimed(self) -> asyncpg.Connection:
        return await self.pool.acquire()

    def _abandon(self, task: asyncio.Future) -> None:
        """Cancel a checkout nobody waits for; a connection it still returns is released."""
        def give_back(done: asyncio.Future) -> None:
            if done.cancelled():
                return
            if done.exception() is not None:  # retrieved: no "never retrieved" warning
                return
            releasing = asyncio.get_running_loop().create_task(
                self._release_quietly(done.result()))
            self._releasing.add(releasing)  # a reference, or the task may be collected
            releasing.add_done_callback(self._releasing.discard)

        task.cancel()
        task.add_done_callback(give_back)

    async def _release_quietly(self, conn: asyncpg.Connection) -> None:
        """Give a connection back. A connection broken mid-operation cannot be reset:
        asyncpg has already terminated it and the pool opens a new one. What the caller
        got (rows, or the error that broke it) stands; a failed reset must not replace it."""
        try:
            await self.pool.release(conn)
        except Exception as exc:  # noqa: BLE001 - any failed reset, see above
            log.debug("released a broken connection (%s: %s)", type(exc).__name__, exc)

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.Connection]:
        """Check out a connection, recording the wait, with a bounded acquire timeout.

        Traced as `db.pool.acquire` only when it waited: no idle connection when it
        asked, at least `ACQUIRE_SPAN_MIN_S`, or a failure (an error status) or a
        cancellation. An acquire served from an idle connection takes tens of
        microseconds, less than making its span; the span is made afterwards, with the
        acquire's own start time.

        With toggle `light_reset` a released connection keeps its session state (see
        `keep_session`): code that sets a session variable, takes a session advisory lock
        or opens a cursor outside a transaction on a pooled connection must undo it, or
        use a connection of its own as the refresher and the listener do."""
        start = time.perf_counter()
        attrs: dict[str, Any] | None = None
        if self.tracer is not None:
            started_ns = time.time_ns()
            attrs = {"db.pool.waiting": self._waiting + 1, "db.pool.size": self.pool.get_size(),
                     "db.pool.idle": self.pool.get_idle_size()}
        self._waiting += 1
        self._update_pool_gauges()
        failure: str | None = None
        try:
            conn = await self._checkout(self.settings.pool.acquire_timeout_s)
        except TimeoutError as exc:
            self.metrics.db_pool_acquire_timeouts.inc()
            failure = "timed out waiting for a connection"
            raise DatabaseUnavailable("timed out waiting for a database connection") from exc
        except asyncio.CancelledError:
            failure = "cancelled while waiting for a connection"
            raise
        except Exception as exc:
            failure = type(exc).__name__
            # opening a new pooled connection while the server restarts raises any of
            # _LOST (CannotConnectNowError, ConnectionRefusedError, ...); a closing pool
            # raises InterfaceError
            if not (database_lost(exc) or isinstance(exc, asyncpg.InterfaceError)):
                raise
            raise DatabaseUnavailable(f"cannot acquire a database connection: {exc}") from exc
        finally:
            self._waiting -= 1
            if attrs is not None and (failure is not None or attrs["db.pool.idle"] == 0
                                      or time.perf_counter() - start >= ACQUIRE_SPAN_MIN_S):
                span = self.tracer.start_span("db.pool.acquire", attributes=attrs,
                                              start_time=started_ns)
                if failure is not None:
                    span.set_status(StatusCode.ERROR, failure)
                span.end()
        self.metrics.db_pool_acquire.observe(time.perf_counter() - start)
        self._update_pool_gauges()
        try:
            yield conn
        except Exception as exc:
            # the connection died under the query or transaction: a server-side error,
            # asyncpg refusing a connection it has seen close (InterfaceError), or one a
            # shutdown left mid-operation (InternalClientError "another operation is in
            # progress"): unusable, so it is terminated, not reset and reused
            broken = isinstance(exc, asyncpg.exceptions.InternalClientError) or (
                isinstance(exc, asyncpg.InterfaceError) and _gone(conn))
            if broken and not _gone(conn):
                conn.terminate()
            if broken or database_lost(exc):
                raise DatabaseUnavailable(f"the database connection was lost: {exc}") from exc
            raise
        finally:
            # asyncpg's reset on release (without `light_reset`, or the rollback of an open
            # transaction) is a query of its own, named as such
            token = None if self.tracer is None else QUERY_NAME.set("pool_release_reset")
            try:
                await self._release_quietly(conn)
            finally:
                if token is not None:
                    QUERY_NAME.reset(token)
            self._update_pool_gauges()

    @asynccontextmanager
    async def _timed(self, name: str) -> AsyncIterator[None]:
        start = time.perf_counter()
        token = None if self.tracer is None else QUERY_NAME.set(name)
        try:
            yield
        except Exception as exc:
            self.metrics.db_query_errors.labels(name, type(exc).__name__).inc()
            raise
        finally:
            if token is not None:
                QUERY_NAME.reset(token)
            self.metrics.db_query_duration.labels(name).observe(time.perf_counter() - start)

    async def _query(self, name: str, conn: asyncpg.Connection | None,
                     run: Callable[[asyncpg.Connection], Awaitable[Any]]) -> Any:
        """Time `run` under `name`, on `conn` or on a connection of its own."""
        if conn is not None:
            async with self._timed(name):
                return await run(conn)
        async with self.acquire() as own, self._timed(name):
            return await run(own)

    async def fetch(self, name: str, sql: str, *args: Any,
                    conn: asyncpg.Connection | None = None) -> list[asyncpg.Record]:
        """Rows of a named query, on `conn` or on a connection of its own."""
        return await self._query(name, conn, lambda c: c.fetch(sql, *args))

    async def fetchrow(self, name: str, sql: str, *args: Any,
                       conn: asyncpg.Connection | None = None) -> asyncpg.Record | None:
        """The first row of a named query, or None."""
        return await self._query(name, conn, lambda c: c.fetchrow(sql, *args))

    async def fetchval(self, name: str, sql: str, *args: Any,
                       conn: asyncpg.Connection | None = None) -> Any:
        """The first column of the first row of a named query."""
        return await self._query(name, conn, lambda c: c.fetchval(sql, *args))

    async def ping(self) -> bool:
        """True when a pooled connection answers `SELECT 1` (the readiness check)."""
        try:
            async with self.acquire() as conn:
                return await asyncio.wait_for(conn.fetchval("SELECT 1"), timeout=2) == 1
        except (DatabaseUnavailable, asyncpg.PostgresError, OSError, TimeoutError,
                asyncpg.InterfaceError):
            return False
