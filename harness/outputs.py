"""The run directory's derived files: timeseries.csv, summary.md, the `latest` link.

`result.json` is the source of truth; these are views of it (and of the
plugin's per-second windows) for spreadsheets, CI comments and humans.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from harness import hdr
from harness.results import RunResult

TIMESERIES_COLUMNS = ("t", "phase", "users", "endpoint", "count", "failures", "rps",
                      "p50_ms", "p95_ms", "p99_ms", "max_ms")


def timeseries_rows(windows: list[dict]) -> list[dict]:
    """One row per (second, endpoint), percentiles from that second's exact histogram."""
    rows = []
    for w in windows:
        for name, data in sorted(w.get("endpoints", {}).items()):
            s = hdr.summary(hdr.decode(data["histogram"])) if data.get("histogram") else {}
            rows.append({"t": w.get("t"), "phase": w.get("phase"), "users": w.get("users"),
                         "endpoint": name, "count": data.get("count", 0),
                         "failures": data.get("failures", 0),
                         "rps": data.get("count", 0) / max(w.get("seconds", 1) or 1, 1e-9),
                         "p50_ms": s.get("p50_ms"), "p95_ms": s.get("p95_ms"),
                         "p99_ms": s.get("p99_ms"), "max_ms": s.get("max_ms")})
    return rows


def write_timeseries(windows: list[dict], path: Path) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=TIMESERIES_COLUMNS)
        writer.writeheader()
        writer.writerows(timeseries_rows(windows))


def _fmt(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def summary_markdown(result: RunResult) -> str:
    """A Markdown summary fit for a CI job summary or a pull-request comment."""
    run = result.run
    lines = [
        f"## Run `{run.run_id}`: {run.scenario} / {run.profile} ({run.status})",
        "",
        f"{run.users} users, {run.duration_s:.0f}s measured after {run.warmup_s:.0f}s warm-up, "
        f"dataset `{run.dataset.preset}` (seed {run.dataset.seed}), "
        f"{run.workers} Locust worker(s), {run.target_workers} target worker(s), "
        f"faults `{run.faults}`, commit `{(run.git_commit or 'unknown')[:12]}`.",
        "",
        "| endpoint | requests | rps | fail % | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, e in [*result.endpoints.items(), ("all", result.totals)]:
        lat = e.latency_ms
        lines.append(f"| `{name}` | {e.count:,} | {e.throughput_rps:,.1f} | "
                     f"{100 * e.failure_rate:.2f} | {_fmt(lat.p50)} | {_fmt(lat.p95)} | "
                     f"{_fmt(lat.p99)} | {_fmt(lat.max)} |")
    c, g = result.correctness, result.generator
    lines += ["", f"Tenant leaks: **{c.tenant_leaks}**; degraded responses: {c.degraded_responses};"
              f" partial responses: {c.partial_responses}."]
    if c.freshness.samples:
        lat = c.freshness.latency_ms
        lines.append(f"Freshness after writes: {c.freshness.samples} samples, "
                     f"p95 {_fmt(lat.p95 if lat else None)} ms, {c.freshness.timeouts} timeouts.")
    if result.server is not None:
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
    return "\n".join(lines) + "\n"


def point_latest(runs_dir: Path, run_dir: Path) -> None:
    """`reports/latest` -> the newest run (a relative symlink, replaced atomically)."""
    link = runs_dir.parent / "latest"
    tmp = runs_dir.parent / ".latest.tmp"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(os.path.relpath(run_dir, link.parent), tmp)
    os.replace(tmp, link)
