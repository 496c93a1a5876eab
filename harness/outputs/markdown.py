"""`summary.md`: a run in Markdown, fit for a CI job summary or a pull-request comment."""

from __future__ import annotations

from harness.model.result import RunResult
from harness.model.trace_summary import TRACE_CATEGORIES, TraceSummary
from harness.outputs.numbers import ms


def _fmt(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def summary_markdown(result: RunResult) -> str:
    """A Markdown summary fit for a CI job summary or a pull-request comment."""
    run = result.run
    lines = [
        f"## Run `{run.run_id}`: {run.scenario} / {run.profile} ({run.status})",
        "",
        (f"{run.users} users, {run.duration_s:.0f}s measured after {run.warmup_s:.0f}s warm-up, "
         f"dataset `{run.dataset.preset}` (seed {run.dataset.seed}), "
         f"{run.workers} Locust worker(s), {run.target_workers} target worker(s), "
         f"faults `{run.faults}`, commit `{(run.git_commit or 'unknown')[:12]}`."),
        "",
        "| endpoint | requests | rps | fail % | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, e in [*result.endpoints.items(), ("all", result.totals)]:
        lat = e.latency_ms
        lines.append(f"| `{name}` | {e.count:,} | {e.throughput_rps:,.1f} | "
                     f"{100 * e.failure_rate:.2f} | {ms(lat.p50)} | {ms(lat.p95)} | "
                     f"{ms(lat.p99)} | {ms(lat.max)} |")
    c, g = result.correctness, result.generator
    lines += ["", (f"Tenant leaks: **{c.tenant_leaks}**; degraded responses: {c.degraded_responses};"
                   f" partial responses: {c.partial_responses}.")]
    if c.freshness.samples:
        lat = c.freshness.latency_ms
        lines.append(f"Freshness after writes: {c.freshness.samples} samples, "
                     f"p95 {ms(lat.p95 if lat else None)} ms, {c.freshness.timeouts} timeouts.")
    if (w := result.writes) is not None:
        lines.append(f"Acknowledged writes: {w.acknowledged:,}, found {w.found:,}, "
                     f"**lost {w.lost}**, acknowledged twice {w.duplicates}." if w.checked
                     else f"Acknowledged writes: {w.acknowledged:,}, **not checked**: {w.error}.")
    if result.server is None:
        lines.append("**Server metrics missing for the measured window.**")
    else:
        if result.server.failed_scrapes:
            lines.append(f"**{len(result.server.failed_scrapes)} metric scrape(s) failed** "
                         f"({result.server.scrapes} answered).")
        for name, cache in result.server.caches.items():
            lines.append(f"Cache `{name}`: hit ratio {_fmt(cache.hit_ratio, 3)}.")
        up = result.server.upstream
        if up is not None and up.logical_requests:
            lines.append(f"ElevenLabs: {up.logical_requests:.0f} requests, retry amplification "
                         f"{_fmt(up.retry_amplification, 2)}, failure rate "
                         f"{_fmt(up.failure_rate, 3)}.")
    a = result.agreement
    lines.append(f"Client/server agreement: {a.client_count:,} vs "
                 f"{'–' if a.server_count is None else f'{a.server_count:,}'} requests.")
    if g.saturated:
        lines.append("**Warning: the load generator was saturated; latencies describe it, "
                     "not the service.**")
    if result.traces is not None:
        lines += ["", *trace_markdown(result.traces)]
    return "\n".join(lines) + "\n"


def _pct(share: float) -> str:
    return f"{100 * share:.0f}%"


def trace_markdown(t: TraceSummary) -> list[str]:
    """Where the traced requests' server time went, and the slowest traces."""
    cats = " | ".join(TRACE_CATEGORIES)
    lines = [
        (f"### Traces ({t.traces:,} request traces sampled at "
         f"{_fmt(t.sampling, 2)}, `{t.spans_file}`)"),
        "",
        ("Share of server time by category (exclusive time over the span tree; parallel "
         "spans share each instant)."),
        "",
        f"| endpoint | traces | {cats} |",
        "|---|---:|" + "---:|" * len(TRACE_CATEGORIES),
        f"| all | {t.traces:,} | "
        + " | ".join(_pct(getattr(t.shares, c)) for c in TRACE_CATEGORIES) + " |",
    ]
    for name, e in t.endpoints.items():
        lines.append(f"| `{name}` | {e.server_traces:,} | "
                     + " | ".join(_pct(getattr(e.shares, c)) for c in TRACE_CATEGORIES) + " |")
    gap = t.client_vs_server
    if gap.samples:
        lines += ["", (f"Client latency minus server span (network + queueing), over "
                       f"{gap.samples} kept samples: p50 {_fmt(gap.p50_ms, 2)} ms, "
                       f"p95 {_fmt(gap.p95_ms, 2)} ms.")]
    slow = [(name, s) for name, e in t.endpoints.items() for s in e.slowest[:1]]
    if slow:
        lines += ["", "| slowest of | trace id | client ms | server ms | net+queue ms | "
                      + cats + " |",
                  "|---|---|---:|---:|---:|" + "---:|" * len(TRACE_CATEGORIES)]
        for name, s in slow:
            b = s.breakdown_ms
            lines.append(f"| `{name}` | `{s.trace_id}` | {_fmt(s.client_ms)} | "
                         f"{_fmt(s.server_ms)} | {_fmt(s.network_queue_ms)} | "
                         + " | ".join(_fmt(getattr(b, c)) if b else "–"
                                      for c in TRACE_CATEGORIES) + " |")
    lines += [f"_{note}_" for note in t.notes]
    return lines
