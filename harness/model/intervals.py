"""The interval log (`windows.hlog`): every one-second window's histograms, per endpoint.

HdrHistogram's standard interval-log format, as wrk2 and HdrLogProcessing
write and read it: a header, then one line per interval and endpoint,
`Tag=<tag>,<start s>,<length s>,<max ms>,<base64 histogram>`. Tags come from
`harness.model.endpoint.interval_tag` (`raw:GET:/api/v1/agents`,
`corrected:GET:/api/v1/agents`); start times are absolute epoch seconds (the
window's second), so `(tag, start second)` addresses one window of one
endpoint and any span of windows can be re-aggregated exactly.

Lines are written with `hdrh.log.HistogramLogWriter` (the tag prefix is ours:
that writer has none). Reading is strict and done here rather than with
`hdrh.log.HistogramLogReader`, which stops silently at the first line it cannot
parse and never closes its file: a damaged log must be an error that names
the line, never a shorter run. A line of the same tag and second written twice
(a late report) is added to the first: histograms add exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO, TypeVar

from hdrh.log import HistogramLogWriter

from harness import hdr
from harness.errors import ConfigError
from harness.model.endpoint import HistogramKind, interval_tag

T = TypeVar("T")

MS_PER_US = 1000.0


class IntervalWriter:
    """Appends windows to an open text file in interval-log format."""

    def __init__(self, fh: TextIO, start_time_s: float | None = None) -> None:
        self.fh = fh
        self._writer = HistogramLogWriter(fh)
        self.lines = 0
        if fh.tell() == 0:
            self._writer.output_log_format_version()
            self._writer.output_comment("[dashboard-perf-harness: one line per endpoint and "
                                        "second; values in microseconds; max column in ms]")
            if start_time_s is not None:  # the first window's second: readers skip earlier
                fh.write(f"#[StartTime: {math.floor(start_time_s):.3f} (seconds since epoch)]\n")
            fh.write("#[BaseTime: 0.000 (seconds since epoch)]\n")
            self._writer.output_legend()

    def write(self, t: int, key: str, kind: HistogramKind, histogram: hdr.HdrHistogram) -> None:
        """One window (`t`: its start second) of one endpoint; empty histograms are skipped."""
        if histogram.get_total_count() == 0:
            return
        self.fh.write(f"Tag={interval_tag(key, kind)},")
        self._writer.output_interval_histogram(histogram, float(t), float(t + 1),
                                               max_value_unit_ratio=MS_PER_US)
        self.lines += 1


@dataclass
class IntervalLog:
    """A whole interval log in memory: `(tag, second) -> histogram`, encoded."""

    entries: dict[tuple[str, int], str] = field(default_factory=dict)
    truncated: bool = False
    """The file's last line was incomplete (its writer was killed) and was dropped."""

    def add(self, tag: str, t: int, encoded: str) -> None:
        have = self.entries.get((tag, t))
        if have is None:
            self.entries[(tag, t)] = encoded
        else:
            self.entries[(tag, t)] = hdr.encode(hdr.merge([have, encoded]))

    def tags(self) -> set[str]:
        return {tag for tag, _ in self.entries}

    def seconds(self, tag: str) -> list[int]:
        return sorted(t for g, t in self.entries if g == tag)

    def encoded(self, key: str, t: int, kind: HistogramKind = "raw") -> str | None:
        """One endpoint's histogram of one second, still encoded (None: nothing started)."""
        return self.entries.get((interval_tag(key, kind), t))

    def histogram(self, key: str, t: int, kind: HistogramKind = "raw") -> hdr.HdrHistogram:
        """One endpoint's histogram of one second (empty when nothing started in it)."""
        encoded = self.encoded(key, t, kind)
        return hdr.decode(encoded) if encoded else hdr.new_histogram()

    def merged(self, key: str, seconds: Iterable[int],
               kind: HistogramKind = "raw") -> hdr.HdrHistogram:
        """The exact histogram of an endpoint over any set of seconds."""
        tag = interval_tag(key, kind)
        return hdr.merge(self.entries[(tag, t)] for t in seconds if (tag, t) in self.entries)


def parse(text: str, source: str = "interval log") -> IntervalLog:
    """An interval log from its text; a malformed line is a ConfigError naming it.

    A last line without its newline was cut short by a writer that was killed (every
    complete line ends with one): it is dropped and `truncated` says so."""
    return parse_checked(text, source, hdr.decode)[0]


def parse_checked(text: str, source: str,
                  check: Callable[[str], T]) -> tuple[IntervalLog, dict[str, T]]:
    """`parse` with each line's encoded histogram checked by `check` (a ValueError is the
    line's error) and what it returned for each `raw:` line's encoding: a reader that
    decodes the histograms its own way (the report's bucket decoder) checks and decodes
    in one pass, and stays exactly as strict."""
    log = IntervalLog()
    checked: dict[str, T] = {}
    lines = text.splitlines()
    if lines and not text.endswith("\n"):
        lines.pop()
        log.truncated = True
    for n, line in enumerate(lines, 1):
        if not line or line.startswith(("#", '"')):
            continue
        if not line.startswith("Tag="):
            raise ConfigError(f"{source}:{n}: interval without a tag")
        tag, _, rest = line[4:].partition(",")
        fields = rest.split(",")
        if not tag or len(fields) != 4:
            raise ConfigError(f"{source}:{n}: not an interval line")
        try:
            start = float(fields[0])
            found = check(fields[3])
        except ValueError as exc:
            raise ConfigError(f"{source}:{n}: {exc}") from exc
        if tag.startswith("raw:"):
            checked[fields[3]] = found
        log.add(tag, int(start), fields[3])
    return log, checked


def read_text(path: Path) -> str:
    """A run's interval log as text; missing or unreadable is a ConfigError naming it."""
    try:
        return path.read_text(encoding="ascii")
    except FileNotFoundError as exc:
        raise ConfigError(f"no interval log at {path}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: unreadable interval log: {exc}") from exc


def load(path: Path) -> IntervalLog:
    """Read a run's interval log; missing or damaged is a ConfigError naming the file."""
    return parse(read_text(path), str(path))
