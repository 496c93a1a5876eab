"""The end of a distributed test: the master waits for every worker's last data.

Locust's master, when the run time is up, calls ``runner.quit()``: it fires
``test_stop`` *without* waiting for the workers, then sends them ``quit``,
sleeps 0.5 s "for the final stats report", and stops receiving. A worker only
stops its users (up to ``--stop-timeout``) and sends its final report after it
got that ``quit``, so anything a worker recorded in its last seconds can miss
the 0.5 s window. The plugin (`harness/loadgen/plugin.py`) therefore runs its
own end-of-test handshake: on ``test_stopping`` the master sends
``harness_stop`` to every worker; each worker stops its users (gracefully,
honouring ``--stop-timeout``) and sends its final delta as a ``harness_final``
message; the master's ``test_stop`` listener waits (`FinalReports.wait`,
yielding to gevent, so messages keep arriving) until every worker's final
delta is merged, or ``stop_timeout + FINAL_GRACE_S``, and only then writes the
results. Workers that never answered are listed in ``client.json`` as
``incomplete_workers``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

log = logging.getLogger("harness.plugin")

FINAL_GRACE_S = 10.0
"""How much longer than `--stop-timeout` the master waits for the workers' finals."""


class FinalReports:
    """The workers that owe the master a final delta, and the wait for them."""

    def __init__(self) -> None:
        self.expected: set[str] = set()

    def expect(self, workers: Iterable[str]) -> None:
        """The workers connected when the test began stopping: each must answer."""
        self.expected = set(workers)

    def missing(self, finished: Iterable[str]) -> set[str]:
        """The expected workers not among those whose final delta is merged."""
        return self.expected - set(finished)

    def wait(self, finished: Callable[[], Iterable[str]], stop_timeout: float,
             sleep: Callable[[float], object]) -> set[str]:
        """Until every expected worker is in `finished()`, or the grace is over; returns
        the ones still missing (and logs them: their last seconds are lost). `sleep` is
        gevent's in Locust, so messages keep arriving; passed in, so that this module
        imports no gevent and the harness process can test it."""
        timeout = stop_timeout + FINAL_GRACE_S
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.missing(finished()):
                return set()
            sleep(0.05)
        left = self.missing(finished())
        if left:
            log.warning("harness: no final report from worker(s) %s after %.0fs; their "
                        "last seconds are missing", sorted(left), timeout)
        return left
