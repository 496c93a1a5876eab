"""Assemble a `RunResult` from what a run produced. Pure: models in, a model out.

Inputs are the Locust side's `ClientDoc` and windows (exact HDR histograms
per endpoint, counted failures and checks, generator health), the service's
side (`ServerSide`, from its scrapes), the process sampler's memory figures
and the run's description. `harness.run.record` reads the files; this module
only combines them, so the same code turns a partial run (interrupted, target
died) into a result as long as the pieces exist.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from harness import hdr
from harness.model.client import ClientDoc, ClientEndpoint, ClientWindow, merge_windows
from harness.model.endpoint import interval_tag, split_endpoint
from harness.model.latency import Latency
from harness.model.result import (
    Agreement,
    Correctness,
    EndpointResult,
    Freshness,
    Generator,
    GeneratorProcess,
    MemoryGrowth,
    RunInfo,
    RunResult,
    Windows,
)
from harness.model.server import ServerSide
from harness.model.trace_summary import TraceSummary

EMPTY = hdr.encode(hdr.new_histogram())


def measured_seconds(client: ClientDoc) -> float:
    """Length of the measured window: from `measure_from` until the test began stopping."""
    start = client.measure_from or client.started_at or 0.0
    end = client.stopping_at or client.ended_at or start
    return max(end - start, 1e-9)


def endpoint(key: str, data: ClientEndpoint, seconds: float,
             server_count: float | None) -> EndpointResult:
    failures = {k: v for k, v in data.failures.items() if v}
    method, route = split_endpoint(key)
    return EndpointResult(
        method=method, route=route, count=data.count, failures=failures,
        failure_rate=round(sum(failures.values()) / data.count, 6) if data.count else 0.0,
        throughput_rps=round(data.count / seconds, 3),
        latency_ms=Latency.of(data.histogram), corrected_latency_ms=Latency.of(
            data.corrected_histogram),
        histogram=data.histogram or EMPTY, corrected_histogram=data.corrected_histogram or EMPTY,
        x_cache=dict(data.x_cache), degraded=data.degraded, partial=data.partial,
        warmup_count=data.warmup_count, cooldown_count=data.cooldown_count,
        server_count=None if server_count is None else int(server_count),
        error_samples={k: list(v) for k, v in data.error_samples.items() if k in failures})


def totals(endpoints: dict[str, EndpointResult], seconds: float) -> EndpointResult:
    """All endpoints together: histograms added, failures summed."""
    failures: dict[str, int] = {}
    for e in endpoints.values():
        for k, v in e.failures.items():
            failures[k] = failures.get(k, 0) + v
    servers = [e.server_count for e in endpoints.values() if e.server_count is not None]
    data = ClientEndpoint(
        count=sum(e.count for e in endpoints.values()), failures=failures,
        histogram=hdr.encode(hdr.merge(e.histogram for e in endpoints.values())),
        corrected_histogram=hdr.encode(hdr.merge(e.corrected_histogram
                                                 for e in endpoints.values())),
        x_cache={}, degraded=sum(e.degraded for e in endpoints.values()),
        partial=sum(e.partial for e in endpoints.values()),
        warmup_count=sum(e.warmup_count for e in endpoints.values()),
        cooldown_count=sum(e.cooldown_count for e in endpoints.values()))
    return endpoint("ALL *", data, seconds, sum(servers) if servers else None)


def correctness(client: ClientDoc) -> Correctness:
    checks = client.checks
    fresh = checks.freshness
    return Correctness(
        tenant_leaks=checks.tenant_leaks,
        unexpected_statuses={ep: dict(by) for ep, by in checks.unexpected_statuses.items()},
        degraded_responses=checks.degraded_responses,
        partial_responses=checks.partial_responses,
        freshness=Freshness(samples=fresh.samples, timeouts=fresh.timeouts,
                            latency_ms=Latency.of(fresh.histogram) if fresh.samples else None))


def generator(client: ClientDoc, memory: dict[str, MemoryGrowth]) -> Generator:
    gen, pacing = client.generator, client.pacing
    return Generator(
        processes=[GeneratorProcess(role=p.role, cpu_max=p.cpu_max, cpu_p90=p.cpu_p90,
                                    cpu_warnings=p.cpu_warnings) for p in gen.processes],
        saturated=gen.saturated, memory=memory,
        intended_rps=pacing.intended_rps, achieved_rps=pacing.achieved_rps,
        shortfall_ratio=pacing.shortfall_ratio)


def windows(seconds: Iterable[ClientWindow], endpoints: Iterable[str],
            interval_log: str) -> Windows:
    """The time series section: one `Window` per second, lines of one second added."""
    merged = merge_windows(seconds)
    keys = sorted(set(endpoints) | {k for w in merged for k in w.endpoints})
    return Windows(
        interval_log=interval_log,
        tags={k: {"raw": interval_tag(k, "raw"), "corrected": interval_tag(k, "corrected")}
              for k in keys},
        seconds=merged)


def agreement(endpoints: dict[str, EndpointResult], server_total: int | None,
              edge_users: int | None = None) -> Agreement:
    """Client and server counts of the same requests: everything that started from the
    window's opening on, cool-down included, against the service's count over the window;
    `edge_users` were running at the opening (`users_at_opening`)."""
    client_count = sum(e.count + e.cooldown_count for e in endpoints.values())
    diff = (round(abs(client_count - server_total) / client_count, 6)
            if server_total is not None and client_count else None)
    return Agreement(client_count=client_count, server_count=server_total, diff_ratio=diff,
                     edge_users=edge_users)


def users_at_opening(seconds: Iterable[ClientWindow], measure_from: float | None) -> int | None:
    """Users running as the measured window opened: the last warm-up second's count (a
    second's users are those at its end), or the first measured second's when there was
    no warm-up; the larger of the two, as a ramp may still be adding users then."""
    if measure_from is None:
        return None
    opening = math.floor(measure_from)
    near = [w.users for w in seconds if opening - 1 <= w.t <= opening]
    return max(near) if near else None


def build(info: RunInfo, client: ClientDoc, seconds: list[ClientWindow],
          server: ServerSide | None, memory: dict[str, MemoryGrowth] | None = None,
          artifacts: dict[str, str] | None = None,
          interval_log: str = "windows.hlog",
          traces: TraceSummary | None = None) -> RunResult:
    """The run's result; `server` is None when the window's scrapes are missing, `traces`
    when the run was not traced (`harness.analysis.traces.summarize` builds it)."""
    span = measured_seconds(client)
    server_counts = {name: r.count for name, r in server.routes.items()} if server else {}
    endpoints = {
        key: endpoint(key, data, span, server_counts.get(key, 0.0) if server else None)
        for key, data in sorted(client.endpoints.items())
    }
    total = totals(endpoints, span)
    server_total = (sum(e.server_count or 0 for e in endpoints.values())
                    if server is not None else None)
    return RunResult(
        run=info, endpoints=endpoints, totals=total,
        windows=windows(seconds, endpoints, interval_log), server=server,
        correctness=correctness(client), generator=generator(client, memory or {}),
        agreement=agreement(endpoints, server_total,
                            users_at_opening(seconds, client.measure_from)),
        events=list(client.events),
        artifacts=artifacts or {}, traces=traces)
