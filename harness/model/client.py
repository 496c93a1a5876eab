"""What the Locust side hands the harness: `client.json`, `windows.jsonl`, `live.json`.

The plugin's master (or local runner) writes these with the models below and
the harness reads them back with the same models, validated, the way Locust's
`StatsEntryDict` travels both ways: a field renamed on one side fails loudly on
the other instead of turning into a silent `None`.

* `client.json` (`ClientDoc`): written once, at the end of the test. Per
  endpoint the *measured window's* totals and its two whole-window HDR
  histograms (raw and corrected for coordinated omission), the correctness
  checks, pacing, the generator's health, events, and where the time series is.
* `windows.jsonl` (`ClientWindow` per line): one line per closed one-second
  window (keyed by the second requests *started* in), streamed while the test
  runs, so the master holds only the last few seconds in memory. A window may
  appear on more than one line when a late report arrived after it was
  written; readers add lines of the same second (`merge_windows`).
* `windows.hlog`: the per-window histograms in HdrHistogram's interval-log
  format (see `harness.model.intervals`), written beside `windows.jsonl`.
* `live.json` (`LiveStatus`): the last seconds, rewritten every second, for
  progress on the terminal.

Traced runs (`--harness-trace-sampling`): every cell counts its requests sent with
a sampled `traceparent` (`traced`), every delta window carries that second's
trace candidates (`DeltaWindow.traces`), and `client.json` keeps, from the
measured window, the slowest sampled requests per endpoint and a uniform
reservoir of them (`ClientTraces`; see `harness.loadgen.traces`).

Writes: every call the service acknowledged (201 with its `call_id`) travels
in the deltas (`Delta.acknowledged`) and `client.json` lists them all
(`ClientDoc.writes`), so the harness can check each one is in the database
(`harness.stack.writes`).

Scope: latency, throughput, failures, degraded/partial counts and freshness
cover the measured windows; `checks.tenant_leaks`,
`checks.unexpected_statuses` and `writes` cover the whole run (a tenant leak
or a lost write during the warm-up still counts).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from harness.model.files import load_json, read_jsonl

CLIENT_SCHEMA_VERSION = 2
Phase = Literal["ramp", "warmup", "measured", "cooldown"]
"""A window's phase: `ramp` until every user is spawned, then `warmup` until the
measured window opens on a whole second, `measured`, and `cooldown` for the
seconds after the test began stopping (counted for client/server agreement,
left out of latency and throughput)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ClientEndpoint(_Model):
    """One endpoint over the measured windows (plus warm-up and cool-down counts)."""

    count: int
    failures: dict[str, int] = {}
    bytes: int = 0
    histogram: str
    """HDR histogram (base64, compressed V2) of raw latency in µs."""
    corrected_histogram: str
    """The same requests, latency measured from the task's intended start."""
    x_cache: dict[str, int] = {}
    degraded: int = 0
    partial: int = 0
    warmup_count: int = 0
    warmup_failures: int = 0
    cooldown_count: int = 0
    cooldown_failures: int = 0
    traced: int = 0
    """Requests sent with a sampled `traceparent` (`--harness-trace-sampling`)."""
    error_samples: dict[str, list[str]] = {}
    """Failure kind -> up to `ERROR_SAMPLES` distinct messages of the measured window, the
    earliest seen by any process first (`EndpointResult.error_samples`)."""


class TraceSample(_Model):
    """One request sent with a sampled `traceparent`: enough to find its spans."""

    trace_id: str
    """32 lowercase hex digits, as in the `traceparent` and the service's spans."""
    endpoint: str
    t: float
    """When the request started (epoch seconds)."""
    latency_ms: float
    failure: str | None = None


class ClientTraces(_Model):
    """The sampled requests the plugin kept from the measured window."""

    sampling: float | None = None
    slowest_n: int
    reservoir_size: int
    slowest: dict[str, list[TraceSample]] = {}
    """Endpoint -> its slowest sampled requests, slowest first."""
    reservoir: list[TraceSample] = []
    """A uniform random sample of every endpoint's sampled requests, in start order."""


class Freshness(_Model):
    samples: int = 0
    timeouts: int = 0
    histogram: str | None = None
    """Commit-to-visible lag of the writer's writes, µs."""


class Checks(_Model):
    tenant_leaks: int = 0
    unexpected_statuses: dict[str, dict[str, int]] = {}
    degraded_responses: int = 0
    partial_responses: int = 0
    freshness: Freshness = Freshness()


class AcknowledgedWrites(_Model):
    """The calls the service acknowledged over the whole run (every phase, every process)."""

    ids: list[int] = []
    """Distinct `call_id`s of 201 answers, ascending: each must be in the database."""
    duplicates: int = 0
    """Acknowledgements naming an id already acknowledged (two 201s for one row)."""


class Pacing(_Model):
    """Intended vs achieved task starts of paced users over the measured window."""

    intended_rps: float | None = None
    achieved_rps: float | None = None
    shortfall_ratio: float | None = None
    intended_tasks: int = 0
    started_tasks: int = 0
    achieved_request_rps: float | None = None


class GeneratorProcess(_Model):
    role: str
    id: str
    pid: int | None = None
    host: str | None = None
    cpu_max: float | None = None
    cpu_p90: float | None = None
    cpu_above_90_share: float = 0.0
    samples: int = 0
    requests: int = 0
    cpu_warnings: int = 0
    saturated: bool = False


class GeneratorHealth(_Model):
    processes: list[GeneratorProcess] = []
    saturated: bool = False
    rule: str = ""


class Event(_Model):
    """A named moment of the run: a fault switched, a phase began."""

    t: float
    name: str
    ok: bool = True
    error: str | None = None


class DeltaCell(_Model):
    """One endpoint in one window of one process, as sent to the master."""

    count: int = 0
    failures: dict[str, int] = {}
    histogram: str | None = None
    corrected_histogram: str | None = None
    bytes: int = 0
    x_cache: dict[str, int] = {}
    degraded: int = 0
    partial: int = 0
    unexpected: dict[str, int] = {}
    """Unexpected HTTP statuses ("500" -> count), kept for the whole run."""
    traced: int = 0
    error_samples: dict[str, list[str]] = {}
    """Failure kind -> up to `ERROR_SAMPLES` distinct messages this process saw in this
    window, first seen first, scrubbed of secrets (`harness.loadgen.samples`)."""


class DeltaWindow(_Model):
    t: int
    endpoints: dict[str, DeltaCell] = {}
    tasks_intended: int = 0
    tasks_started: int = 0
    freshness: str | None = None
    """The writer's commit-to-visible lags of writes started in this second, µs."""
    freshness_timeouts: int = 0
    traces: list[TraceSample] = []
    """This process's candidates among the sampled requests that started in this second
    (per endpoint the slowest, and the lowest-ranked for the reservoir)."""


class Delta(_Model):
    """What one Locust process sends the master: everything since its previous delta.

    The Locust side's own `StatsEntryDict`: the worker builds it, `model_dump()`s it
    into Locust's report (msgpack), and the master validates it back, so a field
    renamed on one side fails loudly on the other. Counts add and histograms merge
    exactly, so deltas can be merged in any order."""

    v: Literal[1] = 1
    seq: int
    final: bool = False
    horizon: float
    """Everything this process recorded before this instant is in this or an earlier delta."""
    requests: int = 0
    cpu: list[tuple[float, float]] = []
    """(epoch s, CPU %) samples."""
    cpu_warnings: int = 0
    windows: list[DeltaWindow] = []
    acknowledged: list[int] = []
    """`call_id`s of the 201s this process's users got since the previous delta, in order
    (an id twice is two acknowledgements)."""
    pid: int | None = None
    host: str | None = None


class WindowCell(_Model):
    count: int = 0
    failures: dict[str, int] = {}


class ClientWindow(_Model):
    """One second of the test (a line of `windows.jsonl`)."""

    t: int
    phase: Phase
    users: int = 0
    spawning: bool = False
    tasks_intended: int = 0
    tasks_started: int = 0
    endpoints: dict[str, WindowCell] = {}
    freshness_visible: int | None = None
    """Writes of this second seen in the overview within the freshness bound (None in
    files written before it was recorded: not measured, as opposed to none)."""
    freshness_timeouts: int | None = None
    """Writes of this second not seen within the bound."""


class ClientDoc(_Model):
    """`client.json`: everything the clients measured, written at the end of the test."""

    schema_version: Literal[2] = CLIENT_SCHEMA_VERSION
    locust_version: str
    role: Literal["local", "master"]
    host: str | None = None
    locustfiles: str | None = None
    shape: str | None = None
    started_at: float | None = None
    """The first spawn (epoch seconds)."""
    spawn_complete_at: float | None = None
    measure_from: float | None = None
    """Start of the measured window: a whole second after the warm-up."""
    stopping_at: float | None = None
    """When the test began stopping: the measured window ends here."""
    ended_at: float | None = None
    """When the last worker's final report was merged."""
    warmup_s: float = 0.0
    workers: int = 0
    incomplete_workers: list[str] = []
    endpoints: dict[str, ClientEndpoint] = {}
    windows_file: str = "windows.jsonl"
    interval_log: str = "windows.hlog"
    checks: Checks = Checks()
    pacing: Pacing = Pacing()
    generator: GeneratorHealth = GeneratorHealth()
    events: list[Event] = []
    server_window: dict[str, float] = {}
    """When the plugin scraped the service at the window's `start` and `end`."""
    traces: ClientTraces | None = None
    """Traced runs only (`--harness-trace-sampling`)."""
    writes: AcknowledgedWrites = AcknowledgedWrites()
    """Every acknowledged write, for the end-of-run check that none is lost."""


class LiveEndpoint(_Model):
    """One endpoint (or all requests) over the live span: what progress lines show and
    what `harness run --abort-on` judges. Percentiles are None when nothing completed."""

    rps: float
    p95_ms: float | None
    error_rate: float
    count: int = 0
    failures: int = 0
    p50_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None


class LiveStatus(_Model):
    """`live.json`: the last few complete seconds, for progress lines and `--abort-on`.

    `span_from`..`span_to` are the whole seconds the figures cover (requests that
    *started* in them, like the windows), so a reader can tell whether they lie in the
    measured phase; `total` is every endpoint together."""

    t: float
    phase: str
    users: int
    rps: float
    endpoints: dict[str, LiveEndpoint] = {}
    started_at: float | None = None
    measure_from: float | None = None
    span_from: float | None = None
    span_to: float | None = None
    total: LiveEndpoint | None = None


def merge_windows(windows: Iterable[ClientWindow]) -> list[ClientWindow]:
    """One window per second, in order: lines of the same second added up exactly."""
    by_t: dict[int, ClientWindow] = {}
    for w in windows:
        have = by_t.get(w.t)
        if have is None:
            by_t[w.t] = w.model_copy(deep=True)
            continue
        have.tasks_intended += w.tasks_intended
        have.tasks_started += w.tasks_started
        have.users = max(have.users, w.users)
        for key, cell in w.endpoints.items():
            mine = have.endpoints.setdefault(key, WindowCell())
            mine.count += cell.count
            for kind, n in cell.failures.items():
                mine.failures[kind] = mine.failures.get(kind, 0) + n
    return [by_t[t] for t in sorted(by_t)]


def load_client(path: Path) -> ClientDoc:
    """Read `client.json`; a missing or malformed file is a ConfigError naming it."""
    return load_json(path, ClientDoc, f"no client results at {path}")


def load_windows(path: Path) -> list[ClientWindow]:
    """Read `windows.jsonl` (missing: no windows)."""
    return read_jsonl(path, ClientWindow)
