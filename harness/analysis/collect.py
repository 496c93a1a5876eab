"""Assemble a `RunResult` from what the run produced. Pure: dicts and strings in.

Inputs are the Locust plugin's `client.json` (exact HDR histograms per
endpoint, counted failures and checks, generator health), the service's
Prometheus scrapes at the edges of the measured window (and between), and
the run's metadata. The runner reads the files; this module only combines
them, so the same code turns a partial run (interrupted, target died) into a
result as long as the pieces exist.
"""

from __future__ import annotations

from harness import hdr
from harness.model.result import (
    Agreement,
    Correctness,
    EndpointResult,
    Freshness,
    Generator,
    GeneratorProcess,
    Latency,
    RunInfo,
    RunResult,
    ServerSide,
)

EMPTY = hdr.encode(hdr.new_histogram())


def latency(encoded: str | None) -> Latency:
    """Percentiles (ms) of an encoded histogram."""
    if not encoded:
        return Latency(count=0)
    s = hdr.summary(hdr.decode(encoded))
    return Latency(count=s["count"], min=s["min_ms"], mean=s["mean_ms"], p50=s["p50_ms"],
                   p90=s["p90_ms"], p95=s["p95_ms"], p99=s["p99_ms"], p999=s["p99_9_ms"],
                   max=s["max_ms"])


def measured_seconds(client: dict) -> float:
    start = client.get("measure_from") or client.get("started_at") or 0.0
    end = client.get("ended_at") or start
    return max(end - start, 1e-9)


def endpoint(name: str, data: dict, seconds: float, server_count: float | None) -> EndpointResult:
    count = int(data.get("count", 0))
    failures = {k: int(v) for k, v in data.get("failures", {}).items() if v}
    method, _, route = name.partition(" ")
    return EndpointResult(
        method=data.get("method", method), route=data.get("route", route), count=count,
        failures=failures,
        failure_rate=round(sum(failures.values()) / count, 6) if count else 0.0,
        throughput_rps=round(count / seconds, 3),
        latency_ms=latency(data.get("histogram")),
        corrected_latency_ms=latency(data.get("corrected_histogram")),
        histogram=data.get("histogram") or EMPTY,
        corrected_histogram=data.get("corrected_histogram") or EMPTY,
        x_cache={k: int(v) for k, v in data.get("x_cache", {}).items()},
        degraded=int(data.get("degraded", 0)), partial=int(data.get("partial", 0)),
        server_count=None if server_count is None else int(server_count),
    )


def totals(endpoints: dict[str, EndpointResult], seconds: float) -> EndpointResult:
    """All endpoints together: histograms added, failures summed."""
    raw = hdr.merge(e.histogram for e in endpoints.values())
    corrected = hdr.merge(e.corrected_histogram for e in endpoints.values())
    failures: dict[str, int] = {}
    for e in endpoints.values():
        for k, v in e.failures.items():
            failures[k] = failures.get(k, 0) + v
    servers = [e.server_count for e in endpoints.values()]
    data = {"method": "ALL", "route": "*", "count": raw.get_total_count(),
            "failures": failures, "histogram": hdr.encode(raw),
            "corrected_histogram": hdr.encode(corrected)}
    server = sum(s for s in servers if s is not None) if any(s is not None for s in servers) \
        else None
    return endpoint("ALL *", data, seconds, server)


def correctness(client: dict) -> Correctness:
    checks = client.get("checks", {})
    fresh = checks.get("freshness", {})
    return Correctness(
        tenant_leaks=int(checks.get("tenant_leaks", 0)),
        unexpected_statuses={ep: {str(k): int(v) for k, v in by.items()}
                             for ep, by in checks.get("unexpected_statuses", {}).items()},
        degraded_responses=int(checks.get("degraded_responses", 0)),
        partial_responses=int(checks.get("partial_responses", 0)),
        freshness=Freshness(samples=int(fresh.get("samples", 0)),
                            timeouts=int(fresh.get("timeouts", 0)),
                            latency_ms=latency(fresh.get("histogram"))
                            if fresh.get("histogram") else None),
    )


def generator(client: dict) -> Generator:
    gen = client.get("generator", {})
    pacing = client.get("pacing", {})
    return Generator(
        processes=[GeneratorProcess(role=p.get("role", "?"), cpu_max=p.get("cpu_max"),
                                    cpu_p90=p.get("cpu_p90"),
                                    cpu_warnings=int(p.get("cpu_warnings", 0)))
                   for p in gen.get("processes", [])],
        saturated=bool(gen.get("saturated", False)),
        memory=gen.get("memory", {}),
        intended_rps=pacing.get("intended_rps"), achieved_rps=pacing.get("achieved_rps"),
        shortfall_ratio=pacing.get("shortfall_ratio"),
    )


def build(info: RunInfo, client: dict, server: ServerSide | None,
          artifacts: dict[str, str] | None = None) -> RunResult:
    """The run's result; `server` is None when the window's scrapes are missing."""
    seconds = measured_seconds(client)
    server_counts = {name: r.count for name, r in server.routes.items()} if server else {}
    endpoints = {
        name: endpoint(name, data, seconds,
                       server_counts.get(name, 0.0) if server is not None else None)
        for name, data in sorted(client.get("endpoints", {}).items())
    }
    total = totals(endpoints, seconds)
    agreement = Agreement(
        client_count=total.count, server_count=total.server_count,
        diff_ratio=(round(abs(total.count - total.server_count) / total.count, 6)
                    if total.server_count is not None and total.count else None))
    return RunResult(run=info, endpoints=endpoints, totals=total, server=server,
                     correctness=correctness(client), generator=generator(client),
                     agreement=agreement, events=list(client.get("events", [])),
                     artifacts=artifacts or {})
