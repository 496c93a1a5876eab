"""Golden run records for tests: a `RunResult` built from a description of its traffic.

The regression gate, the report and the exporters only *read* run records, so their
tests need runs with known properties (a p95 10% higher, a burst at second 30, a
failing endpoint, a client/server gap) without minutes of Locust. `build_run` goes
through the production code rather than writing JSON by hand: it makes what the
Locust side hands over (`ClientDoc`, a `ClientWindow` per second, the interval log)
and what the service's `/metrics` would have said every 2 s, and assembles them with
`collect.build` and `server_metrics.summarize`, so it cannot drift from production.

Deterministic: latencies come from `random.Random(seed)`; request and failure counts
from the rates by running sums, so tests can state them exactly (`rps * seconds`).
Timeline (whole epoch seconds): first spawn at `T0`, spawning done after `ramp_s`,
the measured window `[T0 + warmup_s, T0 + warmup_s + seconds)`, then `cooldown_s`
seconds started while stopping (counted for agreement, not for latency). `k` below
is the second since the measured window opened (negative during the warm-up).

`server_histograms` adds the service's own histograms (named queries, pool acquire,
KPI view freshness, ElevenLabs attempts: `exposition.HISTOGRAMS`) to every scrape,
from a `HistogramSpec` per series; their observations come from a random stream of
their own, so a run built without them is the same run as before.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from harness import hdr
from harness.analysis import collect, exposition, server_metrics
from harness.model import client as cl
from harness.model import result as results
from harness.model.client import ClientDoc, ClientWindow, Phase
from harness.model.endpoint import interval_tag, parse_interval_tag, split_endpoint
from harness.model.intervals import IntervalLog, IntervalWriter
from target_service.settings import Toggles
from target_service.telemetry import LATENCY_BUCKETS

T0 = 1_800_000_000  # 2027-01-15T08:00:00Z: the first spawn of every built run
SCRAPE_EVERY_S = 2


@dataclass(frozen=True)
class LogNormal:
    """Latency in ms: `median_ms * exp(N(0, sigma))`, the usual shape of service latency."""

    median_ms: float
    sigma: float = 0.3

    def sample(self, rng: random.Random) -> float:
        return self.median_ms * math.exp(rng.gauss(0.0, self.sigma))


@dataclass(frozen=True)
class Burst:
    """Seconds `at_s .. at_s + seconds - 1` (measured-window seconds) run slower and/or busier."""

    at_s: int
    seconds: int
    latency_factor: float = 1.0
    rps_factor: float = 1.0

    def covers(self, k: int) -> bool:
        return self.at_s <= k < self.at_s + self.seconds


@dataclass(frozen=True)
class EndpointSpec:
    """The traffic of one endpoint, the same in every phase unless bursts or drift say not."""

    rps: float
    latency_ms: LogNormal | Callable[[int], LogNormal] = LogNormal(20.0)
    """A distribution, or one per window `k` (e.g. `lambda k: LogNormal(20 + k)`)."""
    failures: Mapping[str, float] = field(default_factory=dict)
    """Failure kind (`http_500`, `tenant_leak`, ...) -> share of requests; `http_NNN`
    kinds are counted by the service under status NNN, others under 200."""
    drift: float = 0.0
    """Relative latency change per measured second: 0.01 is +1% a second."""
    bursts: tuple[Burst, ...] = ()
    corrected_extra_ms: float = 0.0
    """Added to every corrected latency (time a paced task waited to start)."""
    server_missing: int = 0
    """Measured requests the service never counted (a client/server disagreement)."""

    def dist(self, k: int) -> LogNormal:
        d = self.latency_ms(k) if callable(self.latency_ms) else self.latency_ms
        factor = (1.0 + self.drift * max(k, 0)) * math.prod(
            b.latency_factor for b in self.bursts if b.covers(k))
        return LogNormal(d.median_ms * factor, d.sigma)

    def rate(self, k: int) -> float:
        return self.rps * math.prod(b.rps_factor for b in self.bursts if b.covers(k))


@dataclass(frozen=True)
class HistogramSpec:
    """One series of a service histogram: observations per second and their durations."""

    rate: float
    latency_ms: LogNormal | Callable[[int], LogNormal] = LogNormal(5.0)
    """A distribution, or one per window `k` (e.g. `lambda k: LogNormal(5 + k)`)."""
    buckets: tuple[float, ...] = LATENCY_BUCKETS
    """Upper bounds in seconds (+Inf added), as the service declares them."""

    def dist(self, k: int) -> LogNormal:
        return self.latency_ms(k) if callable(self.latency_ms) else self.latency_ms


HistogramKey = tuple[str, str]
"""(histogram name, the value of its series label, "" for an unlabelled histogram)."""


class _Histograms:
    """The cumulative buckets of the service's own histograms, as scrapes would read them."""

    def __init__(self, specs: Mapping[HistogramKey, HistogramSpec], seed: int) -> None:
        for name, _ in specs:
            if name not in exposition.HISTOGRAMS:
                raise ValueError(f"{name} is not one of exposition.HISTOGRAMS")
        self.specs = dict(specs)
        self.rng = random.Random(f"server-histograms-{seed}")
        self.counts = {key: [0] * (len(spec.buckets) + 1) for key, spec in specs.items()}
        self.sums = dict.fromkeys(specs, 0.0)
        self.due = dict.fromkeys(specs, 0.0)
        self.seen = dict.fromkeys(specs, 0)

    def second(self, k: int) -> None:
        for key, spec in self.specs.items():
            self.due[key] += spec.rate
            n = math.floor(self.due[key] + 1e-9) - self.seen[key]
            self.seen[key] += n
            dist = spec.dist(k)
            for _ in range(n):
                seconds = dist.sample(self.rng) / 1000
                i = next((i for i, le in enumerate(spec.buckets) if seconds <= le), -1)
                self.counts[key][i] += 1
                self.sums[key] += seconds

    def lines(self) -> list[str]:
        out = []
        for name in dict.fromkeys(n for n, _ in self.specs):
            out.append(f"# TYPE {name} histogram")
            label = exposition.HISTOGRAMS[name]
            for (n, value), spec in self.specs.items():
                if n != name:
                    continue
                labels = f'{label}="{value}",' if label else ""
                cumulative = 0
                for le, c in zip((*map(repr, spec.buckets), "+Inf"), self.counts[(n, value)],
                                 strict=True):
                    cumulative += c
                    out.append(f'{name}_bucket{{{labels}le="{le}"}} {cumulative}.0')
                bare = f"{{{labels[:-1]}}}" if labels else ""
                out += [f"{name}_count{bare} {cumulative}.0",
                        f"{name}_sum{bare} {self.sums[(n, value)]:.6f}"]
        return out


@dataclass
class BuiltRun:
    """A built run: the record, its interval log and the inputs it was assembled from."""

    result: results.RunResult
    log: IntervalLog
    client: ClientDoc
    windows: list[ClientWindow]
    scrapes: list[server_metrics.Scrape]
    """Every scrape in time order, window edges included (empty without a server side)."""

    def seconds(self, phase: Phase = "measured") -> list[int]:
        """The window start seconds of one phase."""
        return [w.t for w in self.windows if w.phase == phase]

    def write(self, directory: Path) -> Path:
        """A run directory as `harness run` leaves it for readers: `result.json` + the log."""
        directory.mkdir(parents=True, exist_ok=True)
        results.save(self.result, directory / "result.json")
        with (directory / self.client.interval_log).open("w", encoding="ascii") as fh:
            writer = IntervalWriter(fh, self.client.started_at)
            for (tag, t), encoded in sorted(self.log.entries.items(), key=lambda e: e[0][::-1]):
                key, kind = parse_interval_tag(tag)
                writer.write(t, key, kind, hdr.decode(encoded))
        return directory


def _phase(t: int, ramp_end: int, measure_from: int, stopping_at: int) -> Phase:
    """`RunAggregate.phase_of` for whole-second clocks."""
    if t >= stopping_at:
        return "cooldown"
    if t >= measure_from:
        return "measured"
    return "ramp" if t < ramp_end else "warmup"


class _Server:
    """The service's cumulative `http_request_duration_seconds`, as scrapes would read it."""

    def __init__(self, profile: str, toggles: Mapping[str, bool],
                 histograms: _Histograms | None = None) -> None:
        self.histograms = histograms
        self.buckets: dict[tuple[str, str, str], list[int]] = {}
        self.sums: dict[tuple[str, str, str], float] = {}
        flags = {f: profile != "naive" for f in Toggles.model_fields} | dict(toggles)
        labels = {"profile": profile, "version": "0.1.0", "pool_max_size": "10", "workers": "1",
                  **{f"toggle_{k}": str(v).lower() for k, v in sorted(flags.items())}}
        self.info = ",".join(f'{k}="{v}"' for k, v in labels.items())

    def observe(self, key: str, failure: str | None, seconds: float) -> None:
        status = failure[5:] if failure and failure.startswith("http_") else "200"
        series = (*split_endpoint(key), status)
        counts = self.buckets.setdefault(series, [0] * (len(LATENCY_BUCKETS) + 1))
        counts[next((i for i, le in enumerate(LATENCY_BUCKETS) if seconds <= le), -1)] += 1
        self.sums[series] = self.sums.get(series, 0.0) + seconds

    def text(self) -> str:
        name = "http_request_duration_seconds"
        lines = [f"# TYPE {name} histogram"]
        for (method, route, status), counts in sorted(self.buckets.items()):
            labels = f'method="{method}",route="{route}",status="{status}"'
            cumulative = 0
            for le, n in zip((*map(repr, LATENCY_BUCKETS), "+Inf"), counts, strict=True):
                cumulative += n
                lines.append(f'{name}_bucket{{{labels},le="{le}"}} {cumulative}')
            lines += [f"{name}_count{{{labels}}} {cumulative}",
                      f"{name}_sum{{{labels}}} {self.sums[(method, route, status)]:.6f}"]
        lines += ["# TYPE db_pool_size gauge", "db_pool_size 10",
                  "# TYPE db_pool_max_size gauge", "db_pool_max_size 10",
                  "# TYPE db_pool_in_use gauge", "db_pool_in_use 2",
                  "# TYPE target_settings_info gauge", f"target_settings_info{{{self.info}}} 1"]
        if self.histograms is not None:
            lines += self.histograms.lines()
        return "\n".join(lines) + "\n"


class _Traffic:
    """One endpoint's requests, second by second: running sums make the counts exact."""

    def __init__(self, key: str, spec: EndpointSpec) -> None:
        self.key, self.spec = key, spec
        self.sent, self.due = 0, 0.0
        self.failed = {kind: 0 for kind in spec.failures}
        self.missing = spec.server_missing
        self.total = cl.ClientEndpoint(count=0, histogram="", corrected_histogram="")
        self.whole = (hdr.new_histogram(), hdr.new_histogram())

    def second(self, t: int, k: int, phase: Phase, rng: random.Random, srv: _Server,
               log: IntervalLog) -> cl.WindowCell | None:
        """The requests that started in second `t`: into the log, the totals and the server."""
        spec, tot = self.spec, self.total
        self.due += spec.rate(k)
        n = math.floor(self.due + 1e-9) - self.sent
        self.sent += n
        if n == 0:
            return None
        kinds: list[str | None] = []
        for kind, share in spec.failures.items():
            new = math.floor(self.sent * share + 1e-9) - self.failed[kind]
            self.failed[kind] += new
            kinds += [kind] * new
        kinds = (kinds + [None] * n)[:n]
        raw, corrected = hdr.new_histogram(), hdr.new_histogram()
        dist = spec.dist(k)
        for kind in kinds:
            ms = dist.sample(rng)
            histograms = [(raw, ms), (corrected, ms + spec.corrected_extra_ms)]
            if phase == "measured":
                histograms += [(self.whole[0], ms), (self.whole[1], ms + spec.corrected_extra_ms)]
            for h, value in histograms:
                hdr.record(h, value * 1000)
            if phase == "measured" and self.missing > 0:
                self.missing -= 1
            else:
                srv.observe(self.key, kind, ms / 1000)
        log.add(interval_tag(self.key, "raw"), t, hdr.encode(raw))
        log.add(interval_tag(self.key, "corrected"), t, hdr.encode(corrected))
        fails = {kind: kinds.count(kind) for kind in spec.failures if kinds.count(kind)}
        if phase == "measured":
            tot.count += n
            for kind, m in fails.items():
                tot.failures[kind] = tot.failures.get(kind, 0) + m
        elif phase == "cooldown":
            tot.cooldown_count += n
            tot.cooldown_failures += sum(fails.values())
        else:
            tot.warmup_count += n
            tot.warmup_failures += sum(fails.values())
        return cl.WindowCell(count=n, failures=fails)

    def client_endpoint(self) -> cl.ClientEndpoint:
        raw, corrected = (hdr.encode(h) for h in self.whole)
        return self.total.model_copy(update={"histogram": raw, "corrected_histogram": corrected})


def build_run(endpoints: Mapping[str, EndpointSpec], seconds: int = 60, warmup_s: int = 10,
              ramp_s: int = 2, cooldown_s: int = 1, seed: int = 1, profile: str = "optimized",
              scenario: str = "mixed", users: int = 10, server: bool = True,
              toggles: Mapping[str, bool] | None = None, failed_scrapes: tuple[int, ...] = (),
              saturated: bool = False, git_commit: str = "0" * 40,
              machine: results.Machine | None = None, run_id: str | None = None,
              server_histograms: Mapping[HistogramKey, HistogramSpec] | None = None
              ) -> BuiltRun:
    """A run of `endpoints` ("METHOD /route" -> traffic); see the module docstring.

    `failed_scrapes`: seconds since `T0` whose periodic scrape got no answer.
    `server_histograms`: (histogram, series label) -> its observations, in every scrape."""
    rng = random.Random(seed)
    ramp_s = min(ramp_s, warmup_s)
    measure_from, stopping_at = T0 + warmup_s, T0 + warmup_s + seconds
    ended_at = stopping_at + cooldown_s
    histograms = _Histograms(server_histograms, seed) if server_histograms else None
    srv, log = _Server(profile, toggles or {}, histograms), IntervalLog()
    traffic = [_Traffic(key, spec) for key, spec in endpoints.items()]
    windows: list[ClientWindow] = []
    texts: dict[int, str] = {}  # scrape second -> exposition
    scrape_times = list(range(T0, ended_at + 1, SCRAPE_EVERY_S))
    for t in range(T0, ended_at):
        if t == measure_from or t in scrape_times:
            texts[t] = srv.text()  # what the windows before `t` sent has been answered
        k, phase = t - measure_from, _phase(t, T0 + ramp_s, measure_from, stopping_at)
        cells = {tr.key: cell for tr in traffic
                 if (cell := tr.second(t, k, phase, rng, srv, log)) is not None}
        if histograms is not None:
            histograms.second(k)
        started = sum(c.count for c in cells.values())
        spawning = t < T0 + ramp_s
        windows.append(ClientWindow(
            t=t, phase=phase, users=max(1, users * (t - T0 + 1) // (ramp_s + 1)) if spawning
            else users, spawning=spawning, tasks_intended=started, tasks_started=started,
            endpoints=cells))
    texts[ended_at] = srv.text()
    leaks = sum(c.failures.get("tenant_leak", 0) for w in windows for c in w.endpoints.values())
    rps = round(sum(spec.rps for spec in endpoints.values()), 3)
    client = ClientDoc(
        locust_version="2.31.0", role="local", started_at=float(T0),
        spawn_complete_at=float(T0 + ramp_s), measure_from=float(measure_from),
        stopping_at=float(stopping_at), ended_at=float(ended_at), warmup_s=float(warmup_s),
        workers=1, endpoints={tr.key: tr.client_endpoint() for tr in traffic},
        interval_log="windows.hlog", checks=cl.Checks(tenant_leaks=leaks),
        pacing=cl.Pacing(intended_rps=rps, achieved_rps=rps, shortfall_ratio=0.0),
        generator=cl.GeneratorHealth(processes=[cl.GeneratorProcess(
            role="local", id="local", cpu_max=95.0 if saturated else 40.0, cpu_p90=35.0)],
            saturated=saturated),
        events=[cl.Event(t=float(T0), name="phase:ramp"),
                cl.Event(t=float(measure_from), name="phase:measured"),
                cl.Event(t=float(stopping_at), name="phase:cooldown")],
        server_window={"start": float(measure_from), "end": float(ended_at)} if server else {})
    scrapes, side, target = [], None, None
    if server:
        start = server_metrics.Scrape(t=float(measure_from), text=texts[measure_from], edge="start")
        end = server_metrics.Scrape(t=float(ended_at), text=texts[ended_at], edge="end")
        during = [server_metrics.Scrape(t=float(s), text=None, error="timed out")
                  if s - T0 in failed_scrapes else server_metrics.Scrape(t=float(s), text=texts[s])
                  for s in scrape_times]
        side = server_metrics.summarize(start, end, during)
        target = server_metrics.target_settings(exposition.parse(start.text))
        scrapes = sorted([start, *during, end], key=lambda s: (s.t, s.edge != "start"))
    info = results.RunInfo(
        run_id=run_id or f"20270115T080000Z-{scenario}-{profile}-{seed}", status="complete",
        scenario=scenario, shape="steady", profile=profile, users=users,
        spawn_rate=float(users) / max(ramp_s, 1), duration_s=float(seconds),
        warmup_s=float(warmup_s), workers=1, target_workers=1, faults="healthy",
        dataset=results.DatasetInfo(preset="small", seed=42, generator_version=1,
                                    anchor_date="2027-01-15"),
        database="embedded", git_commit=git_commit, git_dirty=False, harness_version="0.1.0",
        python="3.11.7", platform="Linux-6.1.0-x86_64", cpu_count=4,
        started_at=results.iso_time(T0), measure_from=results.iso_time(measure_from),
        ended_at=results.iso_time(ended_at), target=target,
        machine=machine or results.Machine(
            cpu_model="Builder CPU @ 3.0GHz", logical_cpus=4, physical_cpus=2,
            memory_bytes=8 << 30, kernel="6.1.0", os="Linux", postgres_version="16.4",
            versions={"python": "3.11.7", "locust": "2.31.0", "fastapi": "0.115.0"}))
    built = collect.build(info, client, windows, side, memory={},
                          artifacts={"interval_log": "windows.hlog"},
                          interval_log=client.interval_log)
    return BuiltRun(result=built, log=log, client=client, windows=windows, scrapes=scrapes)


# ---- spans.jsonl (OTLP-JSON lines, as the service's jsonl exporter writes them) -------------

OTLP_KINDS = {"internal": 1, "server": 2, "client": 3}


def _ns(t: float) -> int:
    """Epoch seconds as integer ns, exactly for whole seconds (a float of ~1.8e18 ns would
    be off by up to 256 ns)."""
    whole = int(t)
    return whole * 10**9 + round((t - whole) * 1e9)


def otlp_span(trace_id: str, span_id: str, name: str, start_ms: float, end_ms: float,
              parent: str | None = None, kind: str = "internal", t0: float = T0,
              **attributes: object) -> dict:
    """One span as the OTLP-JSON file exporter writes it: hex ids, times in ns since the
    epoch as strings, `kind` as a number, typed attribute values. Times are ms after `t0`
    (epoch seconds); attribute names use `_` for `.` (`db_system="postgresql"`)."""
    def typed(v: object) -> dict:
        if isinstance(v, bool):
            return {"boolValue": v}
        if isinstance(v, int):
            return {"intValue": str(v)}
        if isinstance(v, float):
            return {"doubleValue": v}
        return {"stringValue": str(v)}

    span = {"traceId": trace_id, "spanId": span_id, "flags": 256, "name": name,
            "kind": OTLP_KINDS[kind],
            "startTimeUnixNano": str(_ns(t0) + round(start_ms * 1e6)),
            "endTimeUnixNano": str(_ns(t0) + round(end_ms * 1e6)),
            "attributes": [{"key": k.replace("_", "."), "value": typed(v)}
                           for k, v in attributes.items()],
            "status": {}}
    if parent:
        span["parentSpanId"] = parent
    return span


def otlp_server_span(trace_id: str, span_id: str, method: str, route: str, start_ms: float,
                     end_ms: float, client_span: str = "00f067aa0ba902b7",
                     t0: float = T0) -> dict:
    """The FastAPI server span of one request, child of the client's (absent) span."""
    span = otlp_span(trace_id, span_id, f"{method} {route}", start_ms, end_ms,
                     parent=client_span, kind="server", t0=t0, http_method=method)
    span["attributes"].append({"key": "http.route", "value": {"stringValue": route}})
    return span


def otlp_line(spans: list[dict], pid: int = 4242) -> str:
    """One exported batch: one line of `spans.jsonl`."""
    import json

    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "target_service"}},
                               {"key": "process.pid", "value": {"intValue": str(pid)}}]}
    return json.dumps({"resourceSpans": [{"resource": resource, "scopeSpans": [
        {"scope": {"name": "test"}, "spans": spans}]}]})
