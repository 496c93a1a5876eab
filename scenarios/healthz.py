"""Calibration: how many requests per second can this generator drive at all?

Unpaced users hitting `GET /healthz` (no database, no auth): what is measured
is the load generator's ceiling and the HTTP stack's, which is the yardstick
for `wrk` comparisons (README, "Measured figures"). Not a dashboard scenario.

    locust -f scenarios/healthz.py --host http://127.0.0.1:PORT -u 64 -r 64 --headless -t 20s
"""

from __future__ import annotations

from locust import FastHttpUser, constant, task

from harness.loadgen import plugin as locust_plugin  # noqa: F401 - registers the harness plugin's hooks


class HealthzUser(FastHttpUser):
    """As fast as it can: no think time, one cheap endpoint."""

    wait_time = constant(0)

    @task
    def healthz(self) -> None:
        self.client.get("/healthz", name="/healthz")
