"""Stopping background tasks without ever hanging a shutdown.

`task.cancel(); await task` trusts every await inside the task to honour
cancellation promptly. A task blocked in a database driver call (a connect
handshake, a query whose cancel request is itself waiting on the server) may
not, and a shutdown that waits on it forever leaves a process nobody can
stop cleanly. So: cancel, wait a bounded time, then pull the rug (abort the
task's connection), wait a little more, and give up loudly rather than hang.

And a task must not lose the cancel itself. Python 3.11's `asyncio.wait_for`
swallows a cancellation that arrives in the same loop iteration as the
awaited thing completing (gh-86296, fixed in 3.12): a listener waiting for
its connection to close with `wait_for(closed.wait(), keepalive)`, cancelled
as the server goes away, carries on reconnecting forever, and an event loop
closing over it (a shutdown, a test session's end) hangs in its final
cancel-all. So these tasks wait with `asyncio.timeout()`, which does not, and
their reconnect loops also stop when `cancel_requested()` says a cancel came
and something below them lost it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable

import asyncpg
from opentelemetry.instrumentation.utils import suppress_instrumentation

log = logging.getLogger(__name__)


async def cancel_and_wait(task: asyncio.Task | None, *, timeout: float = 2.0,
                          abort: Callable[[], None] | None = None) -> bool:
    """Cancel `task` and wait for it; True when it ended within the bounds."""
    if task is None or task.done():
        return True
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=timeout)
    if not done and abort is not None:
        with contextlib.suppress(Exception):
            abort()
        done, _ = await asyncio.wait([task], timeout=timeout)
    if not done:
        log.warning("background task %s did not stop within %.1fs; leaving it",
                    task.get_name(), 2 * timeout)
        return False
    with contextlib.suppress(asyncio.CancelledError, Exception):
        task.result()
    return True


def cancel_requested() -> bool:
    """The current task has been asked to stop (even if an await swallowed the
    `CancelledError`: the request count stays up until someone uncancels)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class ConnectionTask:
    """A background task that owns one dedicated database connection.

    The KPI refresher and the cache invalidation listener both LISTEN on a
    connection of their own (a pooled one would lose the LISTEN when reset),
    must come back by themselves when it is lost, and must stop within bounds.
    Subclasses implement `_serve()`: connect (setting `self._conn` and counting
    `self.connections`), then work until the connection fails, by raising. The
    reconnect loop (`_run`) is here, once: a loss after a connection that had
    worked counts a reconnect (`_count_reconnect`) and restarts the backoff,
    which doubles from `backoff` up to `backoff_max` with 20% jitter.
    `_on_loss()` runs before the dead connection is dropped, `_on_close()`
    whenever one is.

    The task runs with OpenTelemetry's instrumentations suppressed: its
    keepalive and leader-lock queries would otherwise be a trace of their own
    every second. Work it hands to the job queue runs elsewhere, traced.
    """

    task_name = "background"

    def __init__(self, backoff: float, backoff_max: float) -> None:
        self._task: asyncio.Task | None = None
        self._conn: asyncpg.Connection | None = None
        self.backoff = backoff
        self.backoff_max = max(backoff_max, backoff)
        self.connections = 0
        """Connections made so far (tests and readiness watch it grow after a loss)."""

    @property
    def alive(self) -> bool:
        """The task is running (a readiness check)."""
        return self._task is not None and not self._task.done()

    @property
    def backend_pid(self) -> int | None:
        """The server process of the dedicated connection (tests kill it on purpose)."""
        return self._conn.get_server_pid() if self._conn is not None else None

    async def start(self) -> None:
        with suppress_instrumentation():  # the task keeps the context it was created in
            self._task = asyncio.create_task(self._run(), name=self.task_name)

    async def stop(self) -> None:
        """Bounded: a task stuck in the driver gets its connection aborted under it."""
        await cancel_and_wait(self._task, abort=self._abort)
        await self._close()

    async def _run(self) -> None:
        delay = self.backoff
        while True:
            before = self.connections
            try:
                await self._serve()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the task must outlive any failure
                if cancel_requested():  # a cancel something below us lost
                    raise asyncio.CancelledError from exc
                log.warning("%s lost its connection (%s: %s); reconnecting",
                            self.task_name, type(exc).__name__, exc)
            if self.connections > before:  # it had worked: a loss, and the backoff restarts
                self._count_reconnect()
                delay = self.backoff
            self._on_loss()
            self._abort()  # nothing to say to a dead or hung server: no graceful close
            await self._close()
            await asyncio.sleep(delay * (1 + 0.2 * random.random()))
            delay = min(delay * 2, self.backoff_max)

    async def _serve(self) -> None:
        """Connect, then work until the connection is lost (raise) or the task is cancelled."""
        raise NotImplementedError

    def _count_reconnect(self) -> None:
        """A connection that had worked was lost (the subclass's metric)."""

    def _on_loss(self) -> None:
        """The connection was lost: whatever must happen before it is dropped."""

    def _on_close(self) -> None:
        """Reset whatever the subclass derives from being connected."""

    def _abort(self) -> None:
        if self._conn is not None:
            self._conn.terminate()

    async def _close(self) -> None:
        self._on_close()
        if self._conn is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await self._conn.close()
            self._conn = None
