"""Rich tables for the terminal: a run's summary and the list of past runs."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from harness.model.overhead import TraceOverhead
from harness.model.result import EndpointResult, RunResult
from harness.model.trace_summary import TRACE_CATEGORIES, TraceSummary
from harness.outputs.numbers import ms


def run_table(result: RunResult) -> Group:
    """Per endpoint: requests, rps, failures, p50/p95/p99 (raw) and corrected p99."""
    table = Table(title=f"{result.run.scenario} / {result.run.profile}: {result.run.run_id}")
    for col in ("endpoint", "requests", "rps", "fail %", "p50 ms", "p95 ms", "p99 ms",
                "p99 corr. ms", "server count"):
        table.add_column(col, justify="left" if col == "endpoint" else "right")
    for name, e in [*result.endpoints.items(), ("all", result.totals)]:
        lat, corr = e.latency_ms, e.corrected_latency_ms
        table.add_row(name, f"{e.count:,}", f"{e.throughput_rps:,.1f}",
                      f"{100 * e.failure_rate:.2f}", ms(lat.p50), ms(lat.p95), ms(lat.p99),
                      ms(corr.p99), "–" if e.server_count is None else f"{e.server_count:,}")
    notes = []
    c = result.correctness
    style = "bold red" if c.tenant_leaks else "green"
    notes.append(Text(f"tenant leaks: {c.tenant_leaks}", style=style))
    if result.generator.saturated:
        notes.append(Text("load generator saturated: latencies are not trustworthy",
                          style="bold yellow"))
    a = result.agreement
    if a.diff_ratio is not None:
        line = f"client/server request counts differ by {100 * a.diff_ratio:.2f}%"
        if a.edge_users and a.diff_ratio and a.unexplained_ratio is not None:
            line += (f" ({100 * a.unexplained_ratio:.2f}% beyond the {a.edge_users:,} users "
                     "at the window's opening, each of whom may count on one side only)")
        notes.append(Text(line))
    for note in result.run.notes:
        notes.append(Text(note, style="yellow"))
    if result.traces is not None:
        notes.insert(0, trace_table(result.traces))
    if result.chaos:
        notes.insert(0, chaos_table(result))
    if result.trace_overhead is not None:
        notes.insert(0, overhead_table(result.trace_overhead))
    return Group(table, *notes)


def _pct(x: float) -> str:
    return f"{100 * x:+.1f}%"


def overhead_table(o: TraceOverhead) -> Table:
    """`--trace-interleave`: each endpoint's quantiles, sampled blocks vs unsampled, with
    the 95% interval, and the target's CPU per request of each arm."""
    cpu = [a.cpu_ms_per_request for a in (o.off, o.on)]
    cpu_text = ("" if None in cpu else
                f"; target CPU {cpu[0]:.2f} → {cpu[1]:.2f} ms a request")
    table = Table(title=(f"tracing overhead: sampling {o.on.sampling:g} vs 0, blocks of "
                         f"{o.block_s} s ({o.guard_s} s guard), {o.off.blocks} + "
                         f"{o.on.blocks} blocks{cpu_text}"))
    for col in ("endpoint", "p50 off → on ms", "p50 change", "p95 off → on ms",
                "p95 change [95% interval]"):
        table.add_column(col, justify="left" if col == "endpoint" else "right")
    for name, q in o.endpoints.items():
        p50, p95 = q["p50"], q["p95"]
        table.add_row(name, f"{p50.off_ms:.2f} → {p50.on_ms:.2f}", _pct(p50.change),
                      f"{p95.off_ms:.2f} → {p95.on_ms:.2f}",
                      f"{_pct(p95.change)} " + ("[no interval]" if p95.low is None else
                                                f"[{_pct(p95.low)}, {_pct(p95.high)}]"))
    for note in o.notes:
        table.add_row(Text(note, style="yellow"))
    return table


def _s(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f}s"


def chaos_table(result: RunResult) -> Table:
    """One row per injected fault: whether it was done, the failures it caused, and the
    seconds to the first success and to p95 back within 20% of its pre-fault level."""
    table = Table(title="chaos: faults injected and recovery (s after the fault)")
    for col in ("fault", "injected", "requests", "failures", "degraded", "first success",
                "p95 back", "pre-fault p95 ms", "what was done"):
        table.add_column(col, justify="left" if col in ("fault", "failures", "what was done")
                         else "right")
    for f in result.chaos:
        r = f.recovery
        failures = ", ".join(f"{k} {n:,}" for k, n in sorted(r.failures.items())) if r else ""
        table.add_row(f.spec.text, Text("yes" if f.ok else "FAILED",
                                        style="" if f.ok else "bold red"),
                      f"{r.requests_during:,}" if r else "–", failures or "none",
                      f"{r.degraded_during:,}" if r else "–",
                      _s(r.first_success_s) if r else "–", _s(r.p95_recovered_s) if r else "–",
                      ms(r.pre_fault_p95_ms) if r else "–", f.error or f.detail or "")
    return table


def trace_table(t: TraceSummary) -> Table:
    """Per endpoint: where the server time of its traces went, and its slowest trace."""
    table = Table(title=f"traces: {t.traces:,} sampled at "
                        f"{'–' if t.sampling is None else f'{t.sampling:g}'} "
                        "(share of server time; slowest trace)")
    for col in ("endpoint", "traces", *TRACE_CATEGORIES, "slowest trace", "client ms",
                "server ms"):
        table.add_column(col, justify="left" if col in ("endpoint", "slowest trace")
                         else "right")
    rows = [("all", t.traces, t.shares, None), *((k, e.server_traces, e.shares,
                                                 e.slowest[0] if e.slowest else None)
                                                for k, e in t.endpoints.items())]
    for name, n, shares, slow in rows:
        table.add_row(name, f"{n:,}", *(f"{100 * getattr(shares, c):.0f}%"
                                        for c in TRACE_CATEGORIES),
                      slow.trace_id if slow else "", ms(slow.client_ms if slow else None),
                      ms(slow.server_ms if slow else None))
    return table


def side_by_side(runs: list[RunResult]) -> Table:
    """p95 per endpoint of several runs of the same scenario, and each run's ratio to the last.

    `harness run --profile optimized,naive` ends with this: the naive run's p95
    divided by the optimized one's is the optimizations' measured effect.
    """
    table = Table(title="side by side: p95 ms (ratio = last column / this column)")
    table.add_column("endpoint")
    for r in runs:
        table.add_column(f"{r.run.profile} p95", justify="right")
    for r in runs[:-1]:
        table.add_column(f"{runs[-1].run.profile} / {r.run.profile}", justify="right")
    names = sorted({n for r in runs for n in r.endpoints}) + ["all"]
    for name in names:
        p95s = [(r.totals if name == "all" else r.endpoints.get(name)) for r in runs]
        values = [e.latency_ms.p95 if e is not None else None for e in p95s]
        ratios = [f"{values[-1] / v:,.1f}×" if v and values[-1] else "–" for v in values[:-1]]
        table.add_row(name, *(ms(v) for v in values), *ratios)
    return table


def main_endpoint(result: RunResult) -> tuple[str, EndpointResult] | None:
    """The endpoint with the most requests (what `harness runs` shows the p95 of)."""
    if not result.endpoints:
        return None
    return max(result.endpoints.items(), key=lambda kv: kv[1].count)


def runs_table(runs: list[tuple[str, RunResult | None, str | None]], where: str) -> Table:
    """One row per run (newest first): None, the run left no readable record; the last
    column is the gate's verdict when the run was gated."""
    table = Table(title=f"runs in {where}")
    for col in ("run", "scenario", "profile", "status", "when (UTC)", "main endpoint",
                "p95 ms", "verdict"):
        table.add_column(col)
    for run_id, result, verdict in runs:
        if result is None:
            table.add_row(run_id, "–", "–", "no result", "–", "–", "–", verdict or "–")
            continue
        run, main = result.run, main_endpoint(result)
        table.add_row(run_id, run.scenario, run.profile, run.status, run.started_at[:19],
                      main[0] if main else "–", ms(main[1].latency_ms.p95) if main else "–",
                      verdict or "–")
    return table
