"""The run directory: where each file of a run lives, and the `latest` link.

```
reports/runs/<run-id>/
  run.json        what ran and where (written by the runner)
  client.json     what the clients measured (the Locust plugin)
  windows.jsonl   per-second counts, streamed while the run goes (the plugin)
  windows.hlog    per-second histograms, HdrHistogram interval log (the plugin)
  live.json       the last seconds, for progress (the plugin)
  metrics/        window-start.prom, window-end.prom, scrape-NNNNN.prom.gz, scrapes.jsonl
  processes.csv   RSS and CPU of every process, every 2 s
  spans.jsonl     the target's spans, OTLP-JSON lines (traced runs: harness run --trace),
                  written at the end from spans.spool, what the target wrote meanwhile
  chaos.json      the faults injected (harness run --chaos)
  writes.json     every acknowledged write looked up at the end (runs that write)
  logs/           one log per process
  dataset.json    the dataset manifest
  result.json     the run record (harness.run.record)
  summary.md, timeseries.csv
reports/latest -> runs/<newest run>
```
Every path is named here once; the writers and readers ask this module.
"""

from __future__ import annotations

import os
from pathlib import Path

from harness.errors import ConfigError
from harness.model.client import LiveStatus
from harness.model.files import load_json, save_json
from harness.model.gate import GateResult
from harness.model.result import RunInfo, RunResult, load

RUN_INFO = "run.json"
RESULT = "result.json"
GATE = "gate.json"
SPANS = "spans.jsonl"
SPOOL = "spans.spool"
"""What a traced target writes during the run (`target_service/span_spool.py`); turned
into `spans.jsonl` when the target has stopped, then removed."""
WRITES = "writes.json"
"""The end-of-run check of acknowledged writes (`harness.model.chaos.WriteCheck`)."""


def run_dir(out: Path, run_id: str) -> Path:
    return out / "runs" / run_id


def metrics_dir(run: Path) -> Path:
    return run / "metrics"


def processes_csv(run: Path) -> Path:
    return run / "processes.csv"


def spans_jsonl(run: Path) -> Path:
    return run / SPANS


def spans_spool(run: Path) -> Path:
    return run / SPOOL


def live_json(run: Path) -> Path:
    return run / "live.json"


def read_live(run: Path) -> LiveStatus | None:
    """The run's live status, or None while there is none (or it is being replaced)."""
    try:
        return LiveStatus.model_validate_json(live_json(run).read_bytes())
    except (OSError, ValueError):
        return None


def dataset_json(run: Path) -> Path:
    return run / "dataset.json"


def save_run_info(info: RunInfo, run: Path) -> None:
    save_json(info, run / RUN_INFO, indent=1)


def load_run_info(run: Path) -> RunInfo:
    return load_json(run / RUN_INFO, RunInfo,
                     f"{run} is not a run directory (no {RUN_INFO})")


def point_latest(runs_dir: Path, run: Path) -> None:
    """`reports/latest` -> the newest run (a relative symlink, replaced atomically)."""
    link = runs_dir.parent / "latest"
    tmp = runs_dir.parent / ".latest.tmp"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(os.path.relpath(run, link.parent), tmp)
    os.replace(tmp, link)


def list_runs(runs_dir: Path) -> list[tuple[str, RunResult | None, str | None]]:
    """Every run directory, newest first: its record (None: none readable) and the gate's
    verdict when it was gated (`unreadable` when its gate.json does not read)."""
    dirs = sorted((p for p in runs_dir.glob("*") if p.is_dir()), reverse=True) \
        if runs_dir.is_dir() else []
    out: list[tuple[str, RunResult | None, str | None]] = []
    for d in dirs:
        try:
            result = load(d / RESULT)
        except ConfigError:
            result = None
        verdict = None
        if (d / GATE).exists():
            try:
                verdict = load_json(d / GATE, GateResult, "").verdict
            except ConfigError:
                verdict = "unreadable"
        out.append((d.name, result, verdict))
    return out
