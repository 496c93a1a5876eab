"""The base user of every scenario: a seeded tenant, paced tasks, checked responses.

`DashboardApiUser` (abstract) is a `FastHttpUser` (geventhttpclient: several
times cheaper per request than `HttpUser`, which matters when one generator
core has to keep up with the service) that

* logs in as one seeded user of the dataset manifest, drawn with the
  manifest's traffic `weight`s by a per-user random generator, and sends
  `Authorization: Bearer <api_key>`;
* names every request `METHOD-less route template` (Locust adds the method),
  e.g. `/api/v1/agents/{agent_id}`, so ids and query strings group per endpoint;
* is *paced*: each user aims at `pace` task starts per second. The intended
  start of task n is the intended start of task n-1 plus the interval (the wrk2
  approach: the schedule does not slip when the service is slow), and every
  request carries the task's intended and actual start in its context, so the
  plugin can record latency corrected for coordinated omission. A task that
  waits on purpose (polling for freshness, a think time) says so with
  `intentional_wait(seconds)`: that time moves the schedule instead of making
  the next task late (`harness.loadgen.pacing.Schedule`), so the correction
  charges the service only for lateness it caused;
* checks every response: status in the expected set (else `http_<status>` or
  `unexpected_status`), a JSON body, `user_id` equal to the caller's (else a
  `tenant_leak`, logged at ERROR), and records `X-Cache`, `degraded`, `partial`;
* in traced runs (`--harness-trace-sampling`) sends a W3C `traceparent` made here,
  on the client, with every request (`harness.loadgen.traces`), so the service's
  spans continue the client's trace and the plugin knows the trace id of each
  sampled request.

The manifest comes from `--harness-manifest` or `HARNESS_MANIFEST` (workers on
other machines get the master's copy).
"""

from __future__ import annotations

import itertools
import logging
import os
import random
import sys
import time
from collections.abc import Callable, Iterable
from urllib.parse import urlencode

import gevent
from locust import FastHttpUser, events
from locust.exception import StopUser
from locust.runners import WorkerRunner
from locust.user.task import LOCUST_STATE_RUNNING, LOCUST_STATE_STOPPING, LOCUST_STATE_WAITING

from harness.loadgen import plugin as locust_plugin
from harness.loadgen.pacing import Schedule
from harness.loadgen.recorder import (
    ConnectionFailure,
    InvalidBody,
    TenantLeak,
    TimeoutFailure,
    UnexpectedStatus,
)

log = logging.getLogger("scenarios")
_EPOCH_OFFSET = time.time() - time.monotonic()
_user_counter = itertools.count()
NO_MANIFEST = ("no dataset manifest: pass --harness-manifest PATH or set HARNESS_MANIFEST "
               "(`harness stack up` prints its path; a run directory has it as dataset.json)")


def epoch(mono: float) -> float:
    return mono + _EPOCH_OFFSET


def _manifest_given(environment) -> bool:
    plugin = locust_plugin.plugin_of(environment)
    return plugin is not None and plugin.manifest() is not None


@events.init.add_listener
def _fail_fast_without_manifest(environment, runner=None, **_kw) -> None:
    """Headless runs without a manifest stop before anything starts (exit code 2)."""
    opts = environment.parsed_options
    if runner is None or isinstance(runner, WorkerRunner) or opts is None:
        return
    if getattr(opts, "headless", False) and not _manifest_given(environment):
        log.error(NO_MANIFEST)
        sys.exit(2)


@events.test_start.add_listener
def _check_manifest(environment, **_kw) -> None:
    """Web UI runs: refuse to start the test without a manifest, with the reason."""
    if isinstance(environment.runner, WorkerRunner) or _manifest_given(environment):
        return
    log.error(NO_MANIFEST)
    environment.process_exit_code = 2
    gevent.spawn_later(0.5, environment.runner.stop)  # after start() has spawned


class DashboardApiUser(FastHttpUser):
    """Abstract base: a seeded tenant of the dashboard API, paced and checked."""

    abstract = True
    pace: float = 0.5
    """Intended task starts per second of one user (think time = 1 / pace)."""
    needs_agents = False
    """Draw only among seeded users that own at least one agent."""
    network_timeout = 30.0
    connection_timeout = 10.0

    def __init__(self, environment) -> None:
        super().__init__(environment)
        self.plugin = locust_plugin.plugin_of(environment)
        self.account: dict = {}
        self.user_id: int | None = None
        self._auth: dict[str, str] = {}
        self._schedule: Schedule | None = None
        self._waited = 0.0
        """Seconds the current task has waited on purpose (`intentional_wait`)."""
        self._task_intended: float | None = None
        self._task_started: float | None = None
        self.rng = random.Random(self._seed())

    # -- identity -----------------------------------------------------------------------

    def _seed(self) -> str:
        base = locust_plugin.option(self.environment, "harness_seed") or os.urandom(8).hex()
        worker = getattr(self.environment.runner, "worker_index", 0)
        return f"{base}:{worker}:{os.getpid()}:{next(_user_counter)}"

    def on_start(self) -> None:
        manifest = self.plugin.manifest() if self.plugin else None
        if not manifest:
            # the test_start check has logged why and is stopping the test; idle until
            # then rather than raise (Locust logs every on_start exception with a traceback)
            self._state = LOCUST_STATE_WAITING
            gevent.sleep(3600)
            raise StopUser()
        self.account = choose_user(manifest["users"], self.rng, self.needs_agents)
        self.user_id = int(self.account["user_id"])
        self._auth = {"Authorization": f"Bearer {self.account['api_key']}"}
        scale = float(locust_plugin.option(self.environment, "harness_pace_scale", 1.0))
        rate = self.pace * scale
        interval = 1.0 / rate if rate > 0 else 0.0
        # a random phase, so users spawned together do not fire in lockstep forever
        phase = self.rng.uniform(0.0, interval)
        self._schedule = Schedule(time.monotonic() + phase, interval) if interval > 0 else None
        if phase > 0:
            self._state = LOCUST_STATE_WAITING  # a stop may kill us while we wait
            gevent.sleep(phase)
            self._state = LOCUST_STATE_RUNNING
        self._begin_task()

    def on_stop(self) -> None:
        self._account_slots(time.monotonic())

    # -- pacing -------------------------------------------------------------------------

    def wait_time(self) -> float:
        """Sleep until the next intended start (kept on schedule, wrk2-style), then go.

        The schedule moves by what the task that just ended waited on purpose, as far
        as that made it overrun (`Schedule.advance`), and by nothing else."""
        if self._schedule is not None:
            now = time.monotonic()
            delay = self._schedule.advance(now, self._waited) - now
            if delay > 0:
                gevent.sleep(delay)
        self._begin_task()
        return 0.0

    def intentional_wait(self, seconds: float) -> bool:
        """Sleep `seconds` on purpose inside a task (a think time, a pause between polls).

        The time slept (as measured: an oversleeping generator is not the service's
        fault either) moves this user's schedule instead of being charged as lateness to
        the requests of its next task. Returns False, without sleeping, when the test is
        stopping: the task should end. A stop during the sleep ends the user at once, as
        it does during Locust's own wait between tasks."""
        if self._state == LOCUST_STATE_STOPPING:
            return False
        start = time.monotonic()
        self._state = LOCUST_STATE_WAITING  # a stop may kill us while we wait
        try:
            gevent.sleep(max(0.0, seconds))
        finally:
            self._waited += time.monotonic() - start
        if self._state == LOCUST_STATE_WAITING:
            self._state = LOCUST_STATE_RUNNING
        return self._state != LOCUST_STATE_STOPPING

    def _begin_task(self) -> None:
        self._task_intended = self._schedule.intended if self._schedule is not None else None
        self._task_started = None
        self._waited = 0.0

    def _account_slots(self, now_mono: float) -> None:
        """Every intended slot up to now, by wall clock (the schedule counts, not our pace)."""
        if self._schedule is None or self.plugin is None:
            return
        slots = self._schedule.due_slots(now_mono)
        if slots:
            self.plugin.tasks(intended=[epoch(t) for t in slots])

    def context(self) -> dict:
        """Per request: the task's intended and actual start (epoch seconds)."""
        if self._task_started is None:
            now = time.monotonic()
            self._task_started = now
            self._account_slots(now)
            if self.plugin is not None:
                self.plugin.tasks(started=epoch(now))
        if self._task_intended is None:
            return {"user_id": self.user_id}
        return {"user_id": self.user_id, "intended_start": epoch(self._task_intended),
                "task_start": epoch(self._task_started)}

    # -- requests -----------------------------------------------------------------------

    def api(self, method: str, route: str, *, path: str | None = None,
            params: dict | None = None, json: dict | None = None,
            expected: Iterable[int] = (200,), check_user: bool = True,
            validate: Callable[[dict], str | None] | None = None) -> dict | None:
        """One checked request; returns the JSON body, or None when it failed a check."""
        url = path or route
        query = {k: v for k, v in (params or {}).items() if v is not None}
        if query:
            url = f"{url}?{urlencode(query)}"
        endpoint = f"{method} {route}"
        expected = tuple(expected)
        headers, trace = self._auth, self.plugin.traceparent() if self.plugin else None
        if trace is not None:
            headers = {**self._auth, "traceparent": trace[0]}
        with self.client.request(method, url, name=route, headers=headers, json=json,
                                 catch_response=True) as resp:
            ctx = resp.request_meta["context"]
            if trace is not None:  # the plugin keeps sampled ones as trace candidates
                ctx["trace_id"], ctx["trace_sampled"] = trace[1], trace[2]
            if not resp.status_code:  # no response at all: geventhttpclient's error
                error = getattr(resp, "error", None)
                failure = (TimeoutFailure if "timeout" in type(error).__name__.lower()
                           or isinstance(error, TimeoutError) else ConnectionFailure)
                resp.failure(failure(f"{endpoint}: {error!r}"))
                return None
            cache = resp.headers.get("X-Cache") if resp.headers is not None else None
            if cache:
                ctx["x_cache"] = cache if isinstance(cache, str) else cache[0]
            if resp.status_code not in expected:
                resp.failure(UnexpectedStatus(resp.status_code, expected, endpoint))
                return None
            try:
                body = resp.json()
            except ValueError as exc:
                resp.failure(InvalidBody(f"{endpoint}: not JSON: {exc}"))
                return None
            if not isinstance(body, dict):
                resp.failure(InvalidBody(f"{endpoint}: body is not an object"))
                return None
            if check_user and body.get("user_id") != self.user_id:
                leak = TenantLeak(endpoint, self.user_id, body.get("user_id"))
                log.error("%s", leak)
                resp.failure(leak)
                return None
            problem = validate(body) if validate is not None else None
            if problem:
                resp.failure(InvalidBody(f"{endpoint}: {problem}"))
                return None
            if body.get("degraded") is True:
                ctx["degraded"] = True
            if body.get("partial") is True:
                ctx["partial"] = True
            resp.success()
            return body


def choose_user(users: list[dict], rng: random.Random, needs_agents: bool = False) -> dict:
    """One seeded user, drawn with the manifest's traffic weights."""
    pool = [u for u in users if u.get("agent_ids")] if needs_agents else list(users)
    if not pool:
        raise StopUser()
    weights = [max(float(u.get("weight") or 0.0), 0.0) for u in pool]
    if not any(weights):
        weights = None
    return rng.choices(pool, weights=weights, k=1)[0]
