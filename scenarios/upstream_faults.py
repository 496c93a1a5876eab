"""Upstream faults: agents-heavy load while ElevenLabs goes healthy -> flaky -> outage -> healthy.

    locust -f scenarios/upstream_faults.py --host http://127.0.0.1:PORT \
        --harness-manifest dataset.json --harness-stub-url http://127.0.0.1:STUB -t 120s

A background greenlet on the master (or the local runner; never on workers)
switches the stub's fault preset with `POST {stub}/__admin/faults` at fixed
fractions of the run time (`-t`, or `HARNESS_DURATION_S`; 30 s per phase when
neither is known), restores `healthy` when the test stops early, and records
each switch as an event (`client.json` -> `events`, e.g.
`{"t": 1700000030.1, "name": "faults:flaky"}`), so the report can line the
degradation and the recovery up with the time series.

The same schedule as a chaos SPEC, for a 120 s measured window and with a scenario that
switches nothing itself (e.g. `agents`), with recovery figures per preset window:
`harness run --scenario agents --duration 120s --chaos stub:flaky@30s:30s,stub:outage@60s:30s`.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import urllib.request

import gevent
from locust import events
from locust.runners import WorkerRunner

from harness.loadgen import plugin as locust_plugin
from scenarios import agents, dashboard  # modules: see mixed.py

log = logging.getLogger("scenarios.upstream_faults")
SCHEDULE = (("healthy", 0.0), ("flaky", 0.25), ("outage", 0.5), ("healthy", 0.75))
"""(preset, fraction of the run at which it is applied)."""
PHASE_S_WITHOUT_DURATION = 30.0
NO_STUB = ("upstream_faults needs the ElevenLabs stub: pass --harness-stub-url URL or set "
           "HARNESS_STUB_URL (`harness stack up --json` prints stub_url)")


class AgentsUser(agents.AgentsUser):
    weight = 80


class DashboardUser(dashboard.DashboardUser):
    weight = 20


def set_preset(stub_url: str, preset: str, timeout: float = 5.0) -> None:
    req = urllib.request.Request(
        f"{stub_url.rstrip('/')}/__admin/faults", data=json.dumps({"preset": preset}).encode(),
        headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # local stub
        resp.read()


def schedule(duration_s: float | None) -> list[tuple[float, str]]:
    """(seconds after the start, preset) for each switch."""
    total = duration_s or PHASE_S_WITHOUT_DURATION * len(SCHEDULE)
    return [(frac * total, preset) for preset, frac in SCHEDULE]


class FaultSwitcher:
    def __init__(self, environment) -> None:
        self.env = environment
        self.greenlet: gevent.Greenlet | None = None
        self.current: str | None = None

    @property
    def stub_url(self) -> str:
        return (locust_plugin.option(self.env, "harness_stub_url")
                or os.environ.get("HARNESS_STUB_URL", ""))

    def duration(self) -> float | None:
        env = os.environ.get("HARNESS_DURATION_S")
        if env:
            return float(env)
        run_time = locust_plugin.option(self.env, "run_time")
        return float(run_time) if run_time else None

    def switch(self, preset: str) -> None:
        plugin = locust_plugin.plugin_of(self.env)
        try:
            set_preset(self.stub_url, preset)
        except OSError as exc:
            log.error("could not switch the stub to %s: %s", preset, exc)
            if plugin:
                plugin.add_event(f"faults:{preset}", ok=False, error=str(exc))
            return
        self.current = preset
        log.info("ElevenLabs stub switched to %s", preset)
        if plugin:
            plugin.add_event(f"faults:{preset}")

    def run(self) -> None:
        start = time.monotonic()
        for at, preset in schedule(self.duration()):
            gevent.sleep(max(0.0, start + at - time.monotonic()))
            self.switch(preset)

    def start(self) -> None:
        self.stop_greenlet()
        self.current = None
        self.greenlet = gevent.spawn(self.run)

    def stop_greenlet(self) -> None:
        if self.greenlet is not None:
            self.greenlet.kill(block=True)
            self.greenlet = None

    def stop(self) -> None:
        self.stop_greenlet()
        if self.current not in (None, "healthy"):
            self.switch("healthy")


@events.init.add_listener
def _init(environment, runner=None, **_kw) -> None:
    if runner is None or isinstance(runner, WorkerRunner):
        return
    switcher = FaultSwitcher(environment)
    if not switcher.stub_url:
        log.error(NO_STUB)
        sys.exit(2)
    environment.events.test_start.add_listener(lambda **_: switcher.start())
    environment.events.test_stopping.add_listener(lambda **_: switcher.stop())
