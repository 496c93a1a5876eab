"""Watching a run from the outside: the service's metrics and every process's footprint.

* `Scraper` saves `/metrics` every few seconds into `metrics/` (the plugin
  scrapes the exact window edges; these samples catch gauge peaks between).
* `ProcessSampler` records RSS and CPU of the harness, the target and every
  Locust process, so a run can show that the harness itself stays flat in
  memory (the soak figure in the README) and that nothing grew without bound.
"""

from __future__ import annotations

import csv
import threading
import time
from pathlib import Path

import httpx
import psutil

SCRAPE_EVERY_S = 5.0
SAMPLE_EVERY_S = 2.0


class Scraper:
    """Scrapes `/metrics` every few seconds into `metrics/`, on a thread."""

    def __init__(self, url: str, directory: Path) -> None:
        self.url = url
        self.directory = directory
        self.paths: list[Path] = []
        """Files of the periodic scrapes; read back only when the result is built, so a
        long run does not hold every exposition in memory."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="scraper", daemon=True)
        self._n = 0

    def scrape(self, name: str | None = None) -> Path | None:
        try:
            text = httpx.get(self.url, timeout=5).text
        except httpx.HTTPError:
            return None
        self._n += 1
        path = self.directory / f"{name or f'scrape-{self._n:04d}'}.prom"
        path.write_text(text)
        return path

    def during(self) -> list[str]:
        """The periodic scrapes' texts (for gauge peaks between the window's edges)."""
        return [p.read_text() for p in self.paths if p.exists()]

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.wait(SCRAPE_EVERY_S):
            path = self.scrape()
            if path is not None:
                self.paths.append(path)


class ProcessSampler:
    """RSS (MiB) and CPU% of named processes every couple of seconds, on a thread."""

    def __init__(self, every: float = SAMPLE_EVERY_S) -> None:
        self.every = every
        self.samples: list[tuple[float, str, float, float]] = []
        self._procs: dict[str, psutil.Process] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sampler", daemon=True)
        self._t0 = time.time()

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
        self._thread.join(timeout=10)

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

    def memory_growth(self) -> dict[str, dict[str, float | None]]:
        """Per process: peak RSS in the first minute, in the last minute, and their ratio."""
        out: dict[str, dict[str, float | None]] = {}
        by_name: dict[str, list[tuple[float, float]]] = {}
        for t, name, rss, _ in self.samples:
            by_name.setdefault(name, []).append((t, rss))
        for name, points in by_name.items():
            start, end = points[0][0], points[-1][0]
            first = [r for t, r in points if t - start <= 60]
            last = [r for t, r in points if end - t <= 60]
            first_peak, last_peak = max(first), max(last)
            out[name] = {"first_minute_peak_mb": round(first_peak, 1),
                         "last_minute_peak_mb": round(last_peak, 1),
                         "growth": round(last_peak / first_peak - 1, 4) if first_peak else None,
                         "minutes": round((end - start) / 60, 2)}
        return out
