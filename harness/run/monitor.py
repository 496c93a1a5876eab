"""Watching a run from the outside: the service's metrics and every process's footprint.

* `Scraper` saves `/metrics` every two seconds into `metrics/` (gzipped), and records
  every attempt, answered or not, in `metrics/scrapes.jsonl` (the plugin
  scrapes the exact window edges; these give gauge peaks and the server's
  series over time).
* `ProcessSampler` records RSS and CPU of the harness, the target and every
  Locust process, so a run can show that the harness itself stays flat in
  memory (the soak figure in the README) and that nothing grew without bound.

Both run on a thread; `stop()` joins it, so what they collected is complete
and no longer changing when it is read.
"""

from __future__ import annotations

import csv
import gzip
import threading
import time
from pathlib import Path

import httpx
import psutil

from harness.model.scrape import INDEX_FILE, ScrapeRecord
from harness.stack.database import redact_text

SCRAPE_EVERY_S = 2.0
SAMPLE_EVERY_S = 2.0


class Scraper:
    """Scrapes `/metrics` every couple of seconds into `metrics/`, on a thread."""

    def __init__(self, url: str, directory: Path, every: float = SCRAPE_EVERY_S) -> None:
        self.url = url
        self.directory = directory
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="scraper", daemon=True)
        self._n = 0

    def scrape(self) -> ScrapeRecord:
        """One attempt, saved and indexed whatever its outcome."""
        now = time.time()
        try:
            response = httpx.get(self.url, timeout=min(5.0, self.every * 2))
            response.raise_for_status()
        except httpx.HTTPError as exc:
            record = ScrapeRecord(t=now, error=redact_text(f"{type(exc).__name__}: {exc}")[:300])
        else:
            self._n += 1
            name = f"scrape-{self._n:05d}.prom.gz"  # ~10x smaller: a scrape is ~75 KB
            (self.directory / name).write_bytes(gzip.compress(response.content, 6))
            record = ScrapeRecord(t=now, file=name)
        with (self.directory / INDEX_FILE).open("a", encoding="utf-8") as fh:
            fh.write(record.model_dump_json() + "\n")
        return record

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self.scrape()


class ProcessSampler:
    """RSS (MiB) and CPU% of named processes every couple of seconds, on a thread."""

    def __init__(self, every: float = SAMPLE_EVERY_S) -> None:
        self.every = every
        self.samples: list[tuple[float, str, float, float]] = []
        self._procs: dict[str, psutil.Process] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sampler", daemon=True)

    def watch(self, name: str, pid: int | None) -> None:
        if pid is None:
            return
        try:
            proc = psutil.Process(pid)
            proc.cpu_percent(None)
        except psutil.Error:
            return
        with self._lock:
            self._procs[name] = proc

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            now = time.time()
            with self._lock:
                procs = list(self._procs.items())
            for name, proc in procs:
                try:
                    rss = proc.memory_info().rss / 2**20
                    cpu = proc.cpu_percent(None)
                except psutil.Error:
                    continue
                self.samples.append((now, name, rss, cpu))

    def write_csv(self, path: Path) -> None:
        with path.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(("t", "process", "rss_mb", "cpu_percent"))
            writer.writerows((round(t, 3), n, round(r, 2), round(c, 1))
                             for t, n, r, c in self.samples)


def read_csv(path: Path) -> list[tuple[float, str, float, float]]:
    """The samples of a `processes.csv` (missing: none)."""
    try:
        with path.open(newline="") as f:
            return [(float(r["t"]), r["process"], float(r["rss_mb"]), float(r["cpu_percent"]))
                    for r in csv.DictReader(f)]
    except FileNotFoundError:
        return []
