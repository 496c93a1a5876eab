"""The harness's Locust plugin: exact histograms, time series, correctness counts, health.

Loaded *into* Locust (every scenario imports it through `scenarios/common.py`);
never imported by the harness process, because importing Locust monkey-patches
the interpreter with gevent. Everything it observes comes from Locust's event
hooks; Locust's CSV and rounded percentiles are never read. The pure parts
are `harness/loadgen/recorder.py` (recording, the wire format),
`harness/loadgen/aggregate.py` (merging, closing windows, `client.json`),
`harness/loadgen/live.py` (the live status of the last seconds),
`harness/loadgen/traces.py` (the client's `traceparent`, the kept trace samples),
`harness/loadgen/samples.py` (what a failure said, scrubbed of the manifest's keys
and anything key-like), `harness/loadgen/sources.py` (the manifest, the service's
metrics) and `harness/loadgen/output.py` (the files); the documents
are the models of `harness/model/client.py`.

Its command-line options are in `harness/loadgen/options.py`.

How the master waits for the workers' last data at the end of a test:
`harness/loadgen/handshake.py`.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import time
from pathlib import Path

import gevent
import gevent.event
import psutil
from locust import __version__ as LOCUST_VERSION
from locust import events
from locust.runners import (
    STATE_INIT,
    STATE_MISSING,
    STATE_STOPPED,
    MasterRunner,
    WorkerRunner,
)
from pydantic import ValidationError

from harness.loadgen.aggregate import CLOSE_AFTER_S, RunAggregate
from harness.loadgen.handshake import FINAL_GRACE_S, FinalReports
from harness.loadgen.options import option
from harness.loadgen.output import RunFiles
from harness.loadgen.recorder import Recorder
from harness.loadgen.samples import manifest_keys
from harness.loadgen.sources import ManifestSource, metrics_url, scrape_metrics
from harness.loadgen.traces import TraceparentSource, parse_interleave, parse_sampling
from harness.model.client import Delta

log = logging.getLogger("harness.plugin")
_ATTR = "_harness_plugin"


def plugin_of(environment) -> Plugin | None:
    return getattr(environment, _ATTR, None)


# ---- the plugin --------------------------------------------------------------------

class Plugin:
    """Per-process state; one per Locust environment."""

    def __init__(self, environment) -> None:
        self.env = environment
        self.runner = environment.runner
        if isinstance(self.runner, MasterRunner):
            self.role = "master"
        elif isinstance(self.runner, WorkerRunner):
            self.role = "worker"
        else:
            self.role = "local"
        self.recorder = Recorder()
        self.tracing: TraceparentSource | None = None
        self.aggregate: RunAggregate | None = None
        self.files: RunFiles | None = None
        self.active = False
        self.written = False
        self.finals = FinalReports()
        self.worker_sources: set[str] = set()
        self.manifests = ManifestSource()
        self._proc = psutil.Process()
        self._proc.cpu_percent(None)
        self._warning_flag = False
        self.host = socket.gethostname()
        self._finishing = False
        self._server_window: dict[str, float] = {}
        self._start_scraped = False
        self._done = gevent.event.Event()
        self._ticker = gevent.spawn(self._tick_loop)

    # -- options ------------------------------------------------------------------------

    @property
    def out_dir(self) -> Path | None:
        out = option(self.env, "harness_out")
        return Path(out) if out else None

    def _warmup(self) -> float:
        try:
            return max(0.0, float(option(self.env, "harness_warmup", 0.0)))
        except (TypeError, ValueError):
            return 0.0

    def manifest(self) -> dict | None:
        """The dataset manifest: the local file when readable, else the master's copy."""
        return self.manifests.get(option(self.env, "harness_manifest"))

    # -- test lifecycle -----------------------------------------------------------------

    def on_test_start(self) -> None:
        now = time.time()
        self.recorder.restart()
        self.recorder.enabled = self.out_dir is not None
        self._learn_secrets()
        self.active = True
        self.written = False
        self._finishing = False
        self._done.clear()
        self.finals.expect(())
        self.worker_sources = set()
        self._server_window = {}
        self._start_scraped = False
        sampling = parse_sampling(option(self.env, "harness_trace_sampling"))
        interleave = parse_interleave(option(self.env, "harness_trace_interleave"))
        self.tracing = (TraceparentSource(sampling, interleave_s=interleave)
                        if sampling is not None else None)
        if self.role == "worker":
            return
        self.aggregate = RunAggregate(self._warmup(), trace_sampling=sampling)
        self.aggregate.start(now)
        if self.out_dir is not None:
            self.files = RunFiles(self.out_dir)
            self.files.begin(now)
        if self.role == "master":
            manifest = self.manifest()
            if manifest is not None:
                self.runner.send_message("harness_manifest", manifest)

    def on_spawning_complete(self) -> None:
        if self.aggregate is not None and self.role != "worker":
            self.aggregate.spawn_complete(time.time())

    def on_test_stopping(self) -> None:
        if self.role == "worker" or self.aggregate is None:
            return
        self.aggregate.stopping(time.time())
        if self.role == "master" and self.out_dir is not None:
            self.finals.expect(c.id for c in self.runner.clients.all
                               if c.state != STATE_MISSING)
            self.runner.send_message("harness_stop", None)
        self._write_live()

    def on_test_stop(self) -> None:
        if not self.active:
            return
        if self.role == "worker":
            if not self.recorder.final_sent:
                self._send_final()
            self.active = False
            return
        if self.aggregate is None or self._finishing:
            return
        self._finishing = True
        try:
            if self.aggregate.stopping_at is None:
                self.aggregate.stopping(time.time())
            if self.role == "local":
                self._merge_local(final=True)
            else:
                self._wait_for_finals()
            self.aggregate.ended_at = time.time()
            self.active = False
            if "start" in self._server_window:  # every request is done: close the window
                self._scrape_server("end")
            if self.files is not None and not self.written:
                self.files.windows(self.aggregate.take_closed(math.inf))
                self.write_results()
                self.files.close()
                self.written = True
        finally:
            self._done.set()

    def on_quitting(self) -> None:
        """The process is about to exit (run time over, SIGTERM, last worker gone).

        Worker: stop and send the final delta *before* Locust's own quitting listener
        tells the master "quit" (listeners run in reverse order, ours first), so the
        master has it before it drops this worker. Master/local: when the results are
        being written in another greenlet, wait for that rather than exit under it."""
        if self.role == "worker":
            if self.active and self.runner.state not in (STATE_INIT, STATE_STOPPED):
                self.runner.stop()
            if self.active and not self.recorder.final_sent:
                self._send_final()
            self.active = False
            return
        if self._finishing and not self._done.is_set():
            timeout = float(getattr(self.env, "stop_timeout", 0) or 0) + FINAL_GRACE_S + 5
            self._done.wait(timeout)

    def _wait_for_finals(self) -> None:
        if self.aggregate is None:
            return
        stop_timeout = float(getattr(self.env, "stop_timeout", 0) or 0)
        self.finals.wait(self._finished_workers, stop_timeout, gevent.sleep)

    def _finished_workers(self) -> set[str]:
        """The processes whose final delta is merged."""
        if self.aggregate is None:
            return set()
        return {k for k, p in self.aggregate.processes.items() if p.final}

    # -- recording ----------------------------------------------------------------------

    def on_request(self, request_type, name, response_time, response_length, response=None,
                   context=None, exception=None, start_time=None, **_kw) -> None:
        if self.recorder.enabled:
            self.recorder.request_event(request_type, name, response_time, response_length,
                                        response, context, exception, start_time)

    def traceparent(self) -> tuple[str, str, bool] | None:
        """A new trace context for a request `(header, trace id, sampled)`; None when the
        run is not traced (`--harness-trace-sampling`)."""
        return self.tracing.next() if self.tracing is not None else None

    def tasks(self, intended=(), started: float | None = None) -> None:
        if self.recorder.enabled:
            self.recorder.tasks(intended, started)

    def freshness(self, start: float, lag_s: float | None) -> None:
        if self.recorder.enabled:
            self.recorder.freshness(start, lag_s)

    def acknowledged(self, call_id: int) -> None:
        """A write the service acknowledged with 201 (`scenarios/writer.py`)."""
        if self.recorder.enabled:
            self.recorder.acknowledged(call_id)

    def add_event(self, name: str, **extra) -> None:
        """A named moment of the run (e.g. a fault switch); kept by the master/local runner."""
        if self.aggregate is not None:
            self.aggregate.add_event(time.time(), name, **extra)

    def on_cpu_warning(self) -> None:
        if not self.active:
            return
        if self.role == "master" and self.aggregate is not None:
            self.aggregate.process("master", "master", os.getpid(), self.host).cpu_warnings += 1
        else:
            self.recorder.cpu_warning()

    # -- distributed --------------------------------------------------------------------

    def _delta(self, final: bool = False) -> Delta:
        if final and self.role == "worker":
            log.info("harness: final report of this worker: %d requests recorded in this test",
                     self.recorder.total_requests)
        delta = self.recorder.take_delta(final=final)
        delta.pid, delta.host = os.getpid(), self.host
        return delta

    def _send_final(self) -> None:
        self.runner.send_message("harness_final", self._delta(final=True).model_dump())

    def on_report_to_master(self, client_id, data) -> None:
        if self.recorder.enabled and self.active and not self.recorder.empty:
            data["harness"] = self._delta().model_dump()

    def on_worker_report(self, client_id, data) -> None:
        delta = data.get("harness")
        if delta and self.aggregate is not None:
            self._merge_worker(client_id, delta)

    def _merge_worker(self, client_id: str, data: dict) -> None:
        try:
            delta = Delta.model_validate(data)
        except ValidationError as exc:  # a worker of another harness version, say
            log.error("harness: a report of worker %s does not validate, left out: %s",
                      client_id, exc.errors()[0])
            return
        self.worker_sources.add(client_id)
        self.aggregate.merge(delta, client_id, "worker")

    def on_final_message(self, environment, msg, **_kw) -> None:
        if self.aggregate is not None and msg.data:
            self._merge_worker(msg.node_id, msg.data)

    def on_stop_message(self, environment, msg, **_kw) -> None:
        """Worker: the master is ending the test; stop users now and send the final delta.

        Always answers, even when this worker recorded nothing, so the master never
        waits for a worker in vain."""
        if self.runner.state not in (STATE_INIT, STATE_STOPPED):
            self.runner.stop()  # fires test_stop here, which sends `harness_final`
        if not self.recorder.final_sent:
            self._send_final()
        self.active = False

    def on_manifest_message(self, environment, msg, **_kw) -> None:
        self.manifests.received = msg.data
        self._learn_secrets()

    def _learn_secrets(self) -> None:
        """The dataset's API keys (the ones this process's users send), so no error sample
        can hold one; a manifest that cannot be read leaves the pattern scrubbing alone."""
        try:
            manifest = self.manifest()
        except (OSError, ValueError) as exc:
            log.warning("harness: cannot read the manifest's keys to scrub error samples: %s",
                        exc)
            return
        if manifest is not None:
            self.recorder.set_secrets(manifest_keys(manifest))

    def _merge_local(self, final: bool = False) -> None:
        if self.aggregate is not None and (final or not self.recorder.empty):
            self.aggregate.merge(self._delta(final=final), "local", "local")

    # -- the one-second ticker ------------------------------------------------------------

    def _tick_loop(self) -> None:
        while True:
            gevent.sleep(1.0 - (time.time() % 1.0))
            try:
                self._tick()
            except Exception:
                log.exception("harness plugin tick failed")

    def _tick(self) -> None:
        now = time.time()
        flag = bool(getattr(self.runner, "cpu_warning_emitted", False))
        if not hasattr(events, "cpu_warning") and flag and not self._warning_flag:
            self.on_cpu_warning()  # Locust versions without the cpu_warning event
        self._warning_flag = flag
        if not self.active or not self.recorder.enabled:
            return
        cpu = self._proc.cpu_percent(None)
        if self.role == "master":
            if self.aggregate is not None:
                self.aggregate.cpu_sample("master", "master", now, cpu, os.getpid(), self.host)
        else:
            self.recorder.cpu_sample(now, cpu)
        if self.role == "worker" or self.aggregate is None:
            return
        measure_from = self.aggregate.measure_from
        if measure_from is not None and now >= measure_from and not self._start_scraped:
            # this tick is the whole second measure_from; one try only: a start edge scraped
            # later would not match the clients' window, so a failure leaves it missing
            self._start_scraped = True
            self._scrape_server("start")
        # the tick at second S closes window S-1: its user count is the one at its end
        self.aggregate.set_users(now - 0.5, self.runner.user_count)
        if self.role == "local":
            self._merge_local()
        if self.files is not None:
            self.files.windows(self.aggregate.take_closed(self._horizon(now) - CLOSE_AFTER_S))
        self._write_live(now)

    def _horizon(self, now: float) -> float:
        """Up to when every process's data has arrived."""
        if self.role != "master":
            return now
        active = {c.id for c in self.runner.clients.all if c.state != STATE_MISSING}
        seen = [p.last_horizon for k, p in self.aggregate.processes.items() if k in active]
        return min(seen) if seen else now

    # -- the service's own view of the measured window ------------------------------------

    def _scrape_server(self, edge: str) -> None:
        """Save the service's metrics at an edge of the measured window (`start`, `end`).

        Done here rather than by the harness process because only the master knows
        the exact instant the window opens (the tick at `measure_from`) and the
        instant every worker's last request has completed (after the final
        reports), so the service's counts cover the same requests as ours."""
        url = metrics_url(getattr(self.env, "host", None))
        if self.out_dir is None or not url:
            return
        text = scrape_metrics(url, edge)
        if text is None:
            return
        self._server_window[edge] = time.time()
        if self.files is not None:
            self.files.scrape(edge, text)

    # -- output ---------------------------------------------------------------------------

    def _write_live(self, now: float | None = None) -> None:
        if self.files is None or self.aggregate is None:
            return
        now = now or time.time()
        self.files.live(self.aggregate.live(now, self._horizon(now) - 1, self.runner.user_count))

    def write_results(self) -> Path:
        assert self.files is not None and self.aggregate is not None
        doc = self.aggregate.client_doc(
            LOCUST_VERSION, role=self.role, workers=len(self.worker_sources),
            host=getattr(self.env, "host", None), locustfiles=option(self.env, "locustfile"),
            shape=type(self.env.shape_class).__name__ if self.env.shape_class else None,
            server_window=dict(self._server_window),
            incomplete_workers=(sorted(self.finals.missing(self._finished_workers()))
                                if self.role == "master" else []))
        path = self.files.client(doc)
        log.info("harness: wrote %s (%d endpoints, %d requests measured, %d windows)", path,
                 len(doc.endpoints), sum(e.count for e in doc.endpoints.values()),
                 self.files.windows_written)
        return path


# ---- wiring -------------------------------------------------------------------------

@events.init.add_listener
def _on_init(environment, runner=None, **_kw) -> None:
    if runner is None or plugin_of(environment) is not None:
        return
    plugin = Plugin(environment)
    setattr(environment, _ATTR, plugin)
    ev = environment.events
    ev.test_start.add_listener(lambda **_: plugin.on_test_start())
    ev.spawning_complete.add_listener(lambda **_: plugin.on_spawning_complete())
    ev.test_stopping.add_listener(lambda **_: plugin.on_test_stopping())
    ev.test_stop.add_listener(lambda **_: plugin.on_test_stop())
    ev.request.add_listener(plugin.on_request)
    ev.quitting.add_listener(lambda **_: plugin.on_quitting())
    if hasattr(ev, "cpu_warning"):
        ev.cpu_warning.add_listener(lambda **_: plugin.on_cpu_warning())
    # Locust computes `-t` with gevent's cached loop time, which is stale by however long
    # the start-up blocked the loop (seconds), so runs ended early; refresh it here.
    gevent.get_hub().loop.update_now()
    if (plugin.role != "worker" and option(environment, "harness_shape")
            and environment.shape_class is None):
        log.warning("harness: --harness-shape/HARNESS_SHAPE is ignored: scenarios/shapes.py is "
                    "not one of the locustfiles (-f scenario.py,scenarios/shapes.py)")
    if plugin.role == "worker":
        ev.report_to_master.add_listener(plugin.on_report_to_master)
        runner.register_message("harness_stop", plugin.on_stop_message)
        runner.register_message("harness_manifest", plugin.on_manifest_message)
    elif plugin.role == "master":
        ev.worker_report.add_listener(plugin.on_worker_report)
        runner.register_message("harness_final", plugin.on_final_message)
