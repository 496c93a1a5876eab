"""Writes and their freshness: record a call, then watch the overview until it shows it.

    locust -f scenarios/writer.py --host http://127.0.0.1:PORT --harness-manifest dataset.json

The freshness lag is the time from a successful `POST /api/v1/calls` until an
overview for the same user shows `kpis.total_calls` above what it showed before
the write (the KPI view is refreshed asynchronously and the overview is
cached, so this is what a user of the dashboard waits for). The overview is
polled every 100 ms; after 10 s the sample is counted as a `freshness_timeout`.
Another writer acting as the same seeded user at the same moment can make a
lag look shorter; with the default weights this is rare.
"""

from __future__ import annotations

import time

import gevent
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
        if self.api("POST", CALLS, json=call, expected=(201,)) is None:
            return
        written = time.monotonic()
        deadline = written + FRESHNESS_TIMEOUT_S
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
            gevent.sleep(max(0.0, min(POLL_INTERVAL_S, deadline - seen)))

    def _freshness(self, post_start: float, lag: float | None) -> None:
        if self.plugin is not None:
            self.plugin.freshness(post_start, lag)
