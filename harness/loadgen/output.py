"""The files the Locust side writes into `--harness-out` (the run directory).

* `windows.hlog` and `windows.jsonl`: appended as windows close, while the
  test runs (so a long run never holds its time series in memory, and a killed
  run keeps every window closed before it died);
* `live.json`: rewritten every second;
* `client.json`: once, at the end;
* `metrics/window-start.prom`, `metrics/window-end.prom`: the service's
  metrics at the exact edges of the measured window.

Every whole-file write is atomic (a temporary file renamed over the target).
"""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from harness.loadgen.aggregate import ClosedWindow
from harness.model.client import ClientDoc, LiveStatus
from harness.model.files import save_json, write_text
from harness.model.intervals import IntervalWriter

CLIENT_FILE = "client.json"
LIVE_FILE = "live.json"
WINDOWS_FILE = "windows.jsonl"
INTERVAL_LOG = "windows.hlog"


class RunFiles:
    """One test's files in one directory."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self._jsonl: TextIO | None = None
        self._hlog: TextIO | None = None
        self._intervals: IntervalWriter | None = None
        self.windows_written = 0

    def begin(self, start_time_s: float) -> None:
        """A new test: the time-series files start empty."""
        self.close()
        self.out.mkdir(parents=True, exist_ok=True)
        self._jsonl = (self.out / WINDOWS_FILE).open("w", encoding="utf-8")
        self._hlog = (self.out / INTERVAL_LOG).open("w", encoding="ascii")
        self._intervals = IntervalWriter(self._hlog, start_time_s)
        self.windows_written = 0

    def windows(self, closed: list[ClosedWindow]) -> None:
        """Append closed windows: one `windows.jsonl` line each, two log lines per endpoint."""
        if not closed or self._jsonl is None or self._intervals is None:
            return
        for window in closed:
            t = window.record.t
            for key, (raw, corrected) in window.histograms.items():
                self._intervals.write(t, key, "raw", raw)
                self._intervals.write(t, key, "corrected", corrected)
            self._jsonl.write(window.record.model_dump_json() + "\n")
        self._hlog.flush()
        self._jsonl.flush()
        self.windows_written += len(closed)

    def live(self, status: LiveStatus) -> None:
        save_json(status, self.out / LIVE_FILE)

    def client(self, doc: ClientDoc) -> Path:
        path = self.out / CLIENT_FILE
        save_json(doc, path, indent=1)
        return path

    def scrape(self, edge: str, text: str) -> None:
        write_text(self.out / "metrics" / f"window-{edge}.prom", text)

    def close(self) -> None:
        for fh in (self._jsonl, self._hlog):
            if fh is not None and not fh.closed:
                fh.close()
        self._jsonl = self._hlog = None
        self._intervals = None
