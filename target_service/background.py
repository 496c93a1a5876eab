"""Stopping background tasks without ever hanging a shutdown.

`task.cancel(); await task` trusts every await inside the task to honour
cancellation promptly. A task blocked in a database driver call (a connect
handshake, a query whose cancel request is itself waiting on the server) may
not, and a shutdown that waits on it forever leaves a process nobody can
stop cleanly. So: cancel, wait a bounded time, then pull the rug (abort the
task's connection), wait a little more, and give up loudly rather than hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

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
