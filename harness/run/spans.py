"""`spans.jsonl` from the target's span spool, once the target has stopped.

A traced run's target writes its spans to `spans.spool` (`target_service/span_spool.py`
says why: encoding OTLP-JSON inside the measured process was about a sixth of what a
sampled request cost it). The runner calls `write_jsonl` in its teardown, after the
stack is down (and `record.traces` calls it for a run directory whose teardown never
got there): the
spool's batches become OTLP-JSON lines, exactly as the target's `jsonl` exporter writes
them, and the spool is removed. Nothing is lost silently: a spool with damaged frames
(a worker killed mid-write) is kept beside the lines read from it, and a spool that
cannot be read at all is kept with no `spans.jsonl`; either way the run says so in a note.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from harness.run import layout
from target_service.span_spool import SpoolError, spool_to_jsonl

log = logging.getLogger(__name__)

PROGRESS_EVERY = 50_000
"""Spans between two progress lines while the spool is turned into JSON lines."""


def write_jsonl(run: Path, on_progress: Callable[[str], None] = lambda _: None) -> str | None:
    """Turn the run's spool into `spans.jsonl`; a note when something was not turned."""
    spool = layout.spans_spool(run)
    if not spool.exists():
        return None
    target = layout.spans_jsonl(run)
    on_progress(f"writing {target.name}")
    reported = 0

    def batch_done(spans: int) -> None:
        nonlocal reported
        if spans - reported >= PROGRESS_EVERY:
            reported = spans
            on_progress(f"writing {target.name}: {spans:,} spans")

    try:
        reader = spool_to_jsonl(spool, target, on_batch=batch_done)
    except (SpoolError, OSError) as exc:
        log.warning("could not turn %s into %s: %s", spool, target, exc)
        return (f"{spool.name} could not be turned into {target.name} ({exc}); "
                f"the spool is kept in the run directory")
    log.info("%s: %d spans", target, reader.spans)
    if reader.damaged:
        return (f"{spool.name} had {reader.damaged} damaged frame(s) ({reader.skipped_bytes:,} "
                f"bytes, a target stopped mid-write?): {target.name} has the "
                f"{reader.spans:,} spans of the others; the spool is kept")
    spool.unlink()
    return None
