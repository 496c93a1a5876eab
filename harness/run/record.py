"""A run directory in, the run record out: `result.json` and its views.

`collect` reads what the runner, the Locust plugin and the monitors left in a
run directory and hands it to the pure `harness.analysis.collect`; `write`
writes `result.json`, `summary.md` and `timeseries.csv`. Both work on any
run directory, also one whose run was interrupted or whose target died: what
is missing is said in the record's notes, never silently dropped.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from harness import hdr
from harness.analysis import blocks, exposition, interleave, recovery, server_metrics
from harness.analysis import collect as assemble
from harness.analysis import traces as trace_summary
from harness.analysis.memory import memory_growth
from harness.errors import ConfigError
from harness.loadgen.output import CLIENT_FILE, INTERVAL_LOG
from harness.model import intervals
from harness.model.chaos import WriteCheck
from harness.model.client import ClientDoc, load_client, load_windows
from harness.model.result import RunInfo, RunResult, iso_time, save
from harness.model.scrape import INDEX_FILE, load_index
from harness.model.trace_summary import TraceSummary
from harness.outputs import markdown, timeseries
from harness.run import layout
from harness.run import spans as span_files
from harness.run.monitor import read_csv
from harness.stack import chaos as chaos_log

ARTIFACTS = {"client": CLIENT_FILE, "windows": "windows.jsonl", "interval_log": INTERVAL_LOG,
             "metrics": "metrics/", "processes": "processes.csv", "logs": "logs/",
             "dataset": "dataset.json", "summary": "summary.md",
             "timeseries": "timeseries.csv"}


def _scrape(path: Path, t: float | None, edge: str) -> server_metrics.Scrape | None:
    if t is None or not path.exists():
        return None
    return server_metrics.Scrape(t=t, text=path.read_text(encoding="utf-8"), edge=edge)


def _read_scrape(path: Path) -> str:
    data = path.read_bytes()
    return (gzip.decompress(data) if path.suffix == ".gz" else data).decode("utf-8", "replace")


def scrapes(run: Path, client: ClientDoc) -> tuple[server_metrics.Scrape | None,
                                                   server_metrics.Scrape | None,
                                                   list[server_metrics.Scrape]]:
    """The window's edge scrapes (None when missing) and every periodic attempt."""
    mdir = layout.metrics_dir(run)
    start = _scrape(mdir / "window-start.prom", client.server_window.get("start"), "start")
    end = _scrape(mdir / "window-end.prom", client.server_window.get("end"), "end")
    during = []
    for r in load_index(mdir / INDEX_FILE):
        if r.file is not None and not (mdir / r.file).exists():
            during.append(server_metrics.Scrape(t=r.t, text=None,
                                                error=f"{r.file} is missing from {mdir}"))
            continue
        during.append(server_metrics.Scrape(t=r.t, error=r.error,
                                            text=_read_scrape(mdir / r.file) if r.file else None))
    return start, end, during


def read_spans(path: Path) -> tuple[list[trace_summary.Span], int]:
    """The spans of `spans.jsonl`, and how many lines could not be read (a line cut
    short by a target that was killed, say)."""
    spans: list[trace_summary.Span] = []
    bad = 0
    with path.open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                spans.extend(trace_summary.parse_batch(json.loads(line)))
            except ValueError:
                bad += 1
    return spans, bad


def traces(run: Path, info: RunInfo, client: ClientDoc, notes: list[str]) -> TraceSummary | None:
    """The trace summary of a traced run (None when it was not traced)."""
    path = layout.spans_jsonl(run)
    if info.trace_sampling is None and not path.exists():
        return None
    if not path.exists() and layout.spans_spool(run).exists():
        # the teardown never got to it (the harness was killed): do it now
        note = span_files.write_jsonl(run)
        if note is not None:
            notes.append(note)
    if not path.exists():
        if not layout.spans_spool(run).exists():
            notes.append(f"the run was traced but {path.name} is missing (the target never "
                         "exported, or was killed before it flushed)")
        return None
    spans, bad = read_spans(path)
    traced = {k: e.traced for k, e in client.endpoints.items() if e.traced}
    summary = trace_summary.summarize(
        spans, client.traces, traced, window=(client.measure_from, client.stopping_at),
        spans_file=path.name, malformed_lines=bad)
    if summary.sampling is None:
        summary.sampling = info.trace_sampling
    return summary


def collect(run: Path) -> RunResult:
    """The run record of a run directory (ConfigError when there is nothing to build from)."""
    info = layout.load_run_info(run)
    try:
        client = load_client(run / CLIENT_FILE)
    except ConfigError as exc:
        raise ConfigError(f"{exc}: Locust did not write its results "
                          f"(see {run / 'logs'})") from exc
    notes = list(info.notes)
    if client.incomplete_workers:
        notes.append(f"workers without a final report: {client.incomplete_workers}")
    start, end, during = scrapes(run, client)
    server = None
    if start is None or end is None:
        notes.append("server metrics missing for the window (no start/end scrape)")
    else:
        server = server_metrics.summarize(start, end, during)
        if server.failed_scrapes:
            notes.append(f"{len(server.failed_scrapes)} of "
                         f"{server.scrapes + len(server.failed_scrapes)} metric scrapes failed")
    summary = traces(run, info, client, notes)
    # the settings the service reported: at the window's opening, else its first answer
    first = start or next((s for s in during if s.text is not None), None)
    target = server_metrics.target_settings(exposition.parse(first.text)) if first else None
    info = info.model_copy(update={
        "measure_from": iso_time(client.measure_from),
        "ended_at": iso_time(client.ended_at or client.stopping_at) or info.ended_at,
        "notes": notes, "target": target})
    artifacts = dict(ARTIFACTS)
    if summary is not None:
        artifacts["spans"] = layout.SPANS
    windows = load_windows(run / client.windows_file)
    result = assemble.build(info, client, windows, server,
                            memory=memory_growth(read_csv(layout.processes_csv(run))),
                            artifacts=artifacts, interval_log=client.interval_log,
                            traces=summary)
    wpath = run / layout.WRITES
    if wpath.exists():
        result = result.model_copy(update={
            "writes": WriteCheck.model_validate_json(wpath.read_bytes())})
    return with_overhead(with_chaos(result, run, windows), run, windows)


def with_overhead(result: RunResult, run: Path, windows) -> RunResult:
    """The record with `trace_overhead` when the run interleaved sampled and unsampled
    blocks (`--trace-interleave`); unchanged otherwise."""
    info = result.run
    hlog = run / result.windows.interval_log if result.windows else None
    if (info.trace_interleave_s is None or info.trace_sampling is None or hlog is None
            or not hlog.exists()):
        return result
    log = intervals.load(hlog)
    measured = [s.t for s in result.windows.seconds if s.phase == "measured"]
    histograms = {key: blocks.window_counts(log.encoded(key, t) for t in measured)
                  for key in result.endpoints}
    counts = {w.t: sum(c.count for c in w.endpoints.values()) for w in windows}
    samples, last = [], None
    # the sampler watches the target's first process: with several uvicorn workers that
    # is their supervisor, whose CPU is not the requests'
    for t, name, _, cpu in sorted(read_csv(layout.processes_csv(run))):
        if name != "target" or info.target_workers > 1:
            continue
        if last is not None:
            samples.append(interleave.CpuSample(t=t, interval=t - last, cpu_percent=cpu))
        last = t
    found = interleave.overhead(histograms, measured, counts, sampling=info.trace_sampling,
                                block_s=info.trace_interleave_s,
                                guard_s=info.trace_guard_s or 0, samples=samples)
    if info.target_workers > 1:
        found.notes.append("no CPU per request: with several target workers the sampled "
                           "process is their supervisor")
    return result.model_copy(update={"trace_overhead": found})


def with_chaos(result: RunResult, run: Path, windows) -> RunResult:
    """The record with the run's injected faults (`chaos.json`), each with its recovery
    figures, and an event at each fault's start and end (unchanged without `--chaos`)."""
    faults = chaos_log.load_log(run)
    if faults is None:
        return result
    per_second: dict[int, list[str]] = {}
    hlog = run / result.windows.interval_log if result.windows else None
    if hlog is not None and hlog.exists():
        for (tag, t), encoded in intervals.load(hlog).entries.items():
            if tag.startswith("raw:"):
                per_second.setdefault(t, []).append(encoded)
    latency = {t: hdr.merge(encoded) for t, encoded in per_second.items()}
    series = result.server.series if result.server else []
    freshness = {w.t: recovery.SecondFreshness(w.freshness_visible, w.freshness_timeouts or 0)
                 for w in windows if w.freshness_visible is not None}
    faults = recovery.recoveries(faults, windows, latency, series, freshness or None)
    events = sorted([*result.events, *chaos_log.events(faults)], key=lambda e: e.t)
    artifacts = {**result.artifacts, "chaos": chaos_log.CHAOS_FILE}
    notes = [*result.run.notes, *([] if freshness else [recovery.FRESHNESS_MISSING])]
    return result.model_copy(update={"chaos": faults, "events": events, "artifacts": artifacts,
                                     "run": result.run.model_copy(update={"notes": notes})})


def write(result: RunResult, run: Path) -> list[Path]:
    """`result.json`, `summary.md`, `timeseries.csv`; `reports/latest` points here.

    Returns the record's two big files (result and interval log), for the size report."""
    hlog = run / result.windows.interval_log if result.windows else None
    log = intervals.load(hlog) if hlog is not None and hlog.exists() else None
    if log is not None and log.truncated:
        result.run.notes.append(f"the last line of {hlog.name} was cut short and is left out")
    save(result, run / layout.RESULT)
    (run / "summary.md").write_text(markdown.summary_markdown(result), encoding="utf-8")
    timeseries.write_timeseries(result, log, run / "timeseries.csv")
    layout.point_latest(run.parent, run)
    return [run / layout.RESULT, *([hlog] if log is not None else [])]
