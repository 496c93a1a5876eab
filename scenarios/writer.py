"""Writes and their freshness: record a call, then watch the overview until it shows it.

    locust -f scenarios/writer.py --host http://127.0.0.1:PORT --harness-manifest dataset.json

The freshness lag is the time from a successful `POST /api/v1/calls` until an
overview for the same user shows `kpis.total_calls` above what it showed before
the write (the KPI view is refreshed asynchronously and the overview is
cached, so this is what a user of the dashboard waits for). The overview is
polled every 100 ms; after 10 s the sample is counted as a `freshness_timeout`.
Another writer acting as the same seeded user at the same moment can make a
lag look shorter; with the default weights this is rare.

The pauses between polls are intentional waits (`DashboardApiUser.intentional_wait`):
a write that takes seconds to show moves this user's schedule rather than being
charged, as coordinated-omission lateness, to the requests of its next task.

Every call the service acknowledged (201 with its `call_id`) is reported to the
plugin (`acknowledged`), so the harness can check at the end of the run that each
one is in the database (`harness.stack.writes`): a write that failed with an error
is not lost, a 201 whose row is missing is.
"""

from __future__ import annotations

import time

from locust import task
from locust.user.task import LOCUST_STATE_STOPPING

from scenarios.common import DashboardApiUser

CALLS = "/api/v1/calls"
OVERVIEW = "/api/v1/dashboard/overview"
POLL_INTERVAL_S = 0.1
FRESHNESS_TIMEOUT_S = 10.0
STATUSES = ("completed", "completed", "completed", "failed", "no_answer", "busy", "voicemail")


class WriterUser(DashboardApiUser):
    """A call finishing on one of the user's agents, every 5 s per simulated user."""

    pace = 0.2
    needs_agents = True
    poll_interval_s = POLL_INTERVAL_S
    """The intentional pause between two polls of the overview."""
    freshness_timeout_s = FRESHNESS_TIMEOUT_S
    """A write not visible after this long is a `freshness_timeout`."""

    @task
    def write_then_read(self) -> None:
        before = self.api("GET", OVERVIEW)
        if before is None:
            return
        baseline = before["kpis"]["total_calls"]
        call = {"agent_id": self.rng.choice(self.account["agent_ids"]),
                "status": self.rng.choice(STATUSES),
                "direction": self.rng.choice(("inbound", "outbound")),
                "duration_seconds": self.rng.randint(5, 900),
                "cost": round(self.rng.uniform(0.01, 3.0), 4)}
        post_start = time.time()
        created = self.api("POST", CALLS, json=call, expected=(201,), validate=_call_id)
        if created is None:
            return
        written = time.monotonic()
        if self.plugin is not None:
            self.plugin.acknowledged(created["call_id"])
        deadline = written + self.freshness_timeout_s
        while True:
            if self._state == LOCUST_STATE_STOPPING:
                return  # the test is ending: no sample rather than a false timeout
            body = self.api("GET", OVERVIEW)
            seen = time.monotonic()
            if body is not None and body["kpis"]["total_calls"] > baseline:
                self._freshness(post_start, seen - written)
                return
            if seen >= deadline:
                self._freshness(post_start, None)
                return
            if not self.intentional_wait(min(self.poll_interval_s, deadline - seen)):
                return  # stopping while it waited: no sample, as above

    def _freshness(self, post_start: float, lag: float | None) -> None:
        if self.plugin is not None:
            self.plugin.freshness(post_start, lag)


def _call_id(body: dict) -> str | None:
    """A 201 names the row it stored; one that does not cannot be checked later."""
    call_id = body.get("call_id")
    if isinstance(call_id, int) and not isinstance(call_id, bool) and call_id > 0:
        return None
    return f"no call_id in the acknowledgement: {call_id!r}"
