"""harness.model.intervals and the interval-log tags of harness.model.endpoint (pure)."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest
from hdrh.log import HistogramLogReader

from harness import hdr
from harness.errors import ConfigError
from harness.model import intervals
from harness.model.endpoint import interval_tag, parse_interval_tag, split_endpoint
from harness.model.intervals import IntervalWriter

T0 = 1_700_000_000
KEYS = ("GET /api/v1/dashboard/overview", "GET /api/v1/agents/{agent_id}", "POST /api/v1/calls")


def filled(rng: random.Random, n: int) -> hdr.HdrHistogram:
    h = hdr.new_histogram()
    for _ in range(n):
        hdr.record(h, rng.lognormvariate(9, 1.0))
    return h


def written(start_time_s: float | None = T0, seconds: int = 5,
            seed: int = 1) -> tuple[str, dict[tuple[str, str, int], hdr.HdrHistogram]]:
    """An interval log of a few seconds and endpoints, and what went into it."""
    rng = random.Random(seed)
    fh = io.StringIO()
    writer = IntervalWriter(fh, start_time_s)
    wrote = {}
    for s in range(seconds):
        for key in KEYS:
            for kind in ("raw", "corrected"):
                h = filled(rng, rng.randint(1, 40))
                writer.write(T0 + s, key, kind, h)
                wrote[(key, kind, T0 + s)] = h
    assert writer.lines == len(wrote)
    return fh.getvalue(), wrote


# ---- tags ------------------------------------------------------------------------------

@pytest.mark.parametrize("key", [*KEYS, "GET /", "DELETE /a:b/{id}"])
@pytest.mark.parametrize("kind", ["raw", "corrected"])
def test_interval_tag_round_trip(key, kind):
    tag = interval_tag(key, kind)
    assert " " not in tag and "," not in tag
    assert parse_interval_tag(tag) == (key, kind)


def test_interval_tag_spelling():
    assert interval_tag("GET /api/v1/agents") == "raw:GET:/api/v1/agents"
    assert interval_tag("POST /api/v1/calls", "corrected") == "corrected:POST:/api/v1/calls"
    assert split_endpoint("GET /api/v1/agents") == ("GET", "/api/v1/agents")


@pytest.mark.parametrize("key", ["GET /a b", "GET /a,b", "GET /a\tb", "GET", "GET "])
def test_a_key_that_cannot_be_a_tag_is_refused(key):
    with pytest.raises(ValueError, match="cannot be an interval-log tag"):
        interval_tag(key)


@pytest.mark.parametrize("tag", ["", "raw", "raw:GET", "raw::/x", "raw:GET:", "hot:GET:/x",
                                 "GET:/x"])
def test_a_malformed_tag_is_refused(tag):
    with pytest.raises(ValueError, match="not an endpoint tag"):
        parse_interval_tag(tag)


# ---- writing and reading -----------------------------------------------------------------

def test_round_trip_is_exact():
    text, wrote = written()
    log = intervals.parse(text)
    assert len(log.entries) == len(wrote) == 5 * len(KEYS) * 2
    assert log.tags() == {interval_tag(k, kind) for k in KEYS for kind in ("raw", "corrected")}
    for (key, kind, t), h in wrote.items():
        back = log.histogram(key, t, kind)
        assert hdr.encode(back) == hdr.encode(h)
        assert back.get_total_count() == h.get_total_count()
        assert back.get_max_value() == h.get_max_value()
    for key in KEYS:
        assert log.seconds(interval_tag(key)) == list(range(T0, T0 + 5))
        span = log.merged(key, range(T0 + 1, T0 + 4), "corrected")  # any span, exactly
        expected = hdr.merge(wrote[(key, "corrected", t)] for t in range(T0 + 1, T0 + 4))
        assert hdr.encode(span) == hdr.encode(expected)
        assert span.get_total_count() == sum(
            wrote[(key, "corrected", t)].get_total_count() for t in range(T0 + 1, T0 + 4))
    assert log.histogram(KEYS[0], T0 + 99).get_total_count() == 0  # nothing in that second


def test_lines_look_like_the_standard_format():
    text, _ = written(seconds=1)
    lines = text.splitlines()
    assert lines[0] == "#[Histogram log format version 1.2]"
    assert f"#[StartTime: {T0:.3f} (seconds since epoch)]" in lines
    assert "#[BaseTime: 0.000 (seconds since epoch)]" in lines
    assert lines[len(lines) - 6 - 1].startswith('"StartTimestamp","Interval_Length"')
    first = lines[-6]
    tag, start, length, max_ms, payload = first.split(",")
    assert tag == "Tag=raw:GET:/api/v1/dashboard/overview"
    assert float(start) == T0 and float(length) == 1.0
    h = hdr.decode(payload)
    assert float(max_ms) == h.get_max_value() // 1000  # the max column is in ms


def test_empty_histograms_are_not_written():
    fh = io.StringIO()
    writer = IntervalWriter(fh, T0)
    header = fh.getvalue()
    writer.write(T0, KEYS[0], "raw", hdr.new_histogram())
    assert writer.lines == 0 and fh.getvalue() == header
    assert intervals.parse(fh.getvalue()).entries == {}


def test_appending_to_a_log_writes_no_second_header(tmp_path):
    path = tmp_path / "w.hlog"
    h = filled(random.Random(2), 10)
    with path.open("w") as fh:
        IntervalWriter(fh, T0).write(T0, KEYS[0], "raw", h)
    with path.open("a") as fh:
        IntervalWriter(fh, T0).write(T0 + 1, KEYS[0], "raw", h)
    text = path.read_text()
    assert text.count("#[Histogram log format version") == 1
    assert intervals.load(path).seconds(interval_tag(KEYS[0])) == [T0, T0 + 1]


def test_a_second_written_twice_is_added():
    rng = random.Random(3)
    a, b, other = filled(rng, 30), filled(rng, 12), filled(rng, 5)
    fh = io.StringIO()
    writer = IntervalWriter(fh, T0)
    writer.write(T0, KEYS[0], "raw", a)
    writer.write(T0, KEYS[0], "corrected", other)  # same second, another tag: kept apart
    writer.write(T0 + 1, KEYS[0], "raw", other)
    writer.write(T0, KEYS[0], "raw", b)  # a late report of the same second
    log = intervals.parse(fh.getvalue())
    assert len(log.entries) == 3
    both = log.histogram(KEYS[0], T0, "raw")
    assert both.get_total_count() == 42
    assert hdr.encode(both) == hdr.encode(hdr.merge([a, b]))
    assert both.get_min_value() == min(a.get_min_value(), b.get_min_value())
    assert log.histogram(KEYS[0], T0, "corrected").get_total_count() == 5
    assert log.histogram(KEYS[0], T0 + 1, "raw").get_total_count() == 5


def damaged(line_no: int, replacement: str) -> str:
    text, _ = written(seconds=2)
    lines = text.splitlines()
    lines[line_no - 1] = replacement
    return "\n".join(lines) + "\n"


def interval_line_numbers(text: str) -> list[int]:
    return [n for n, line in enumerate(text.splitlines(), 1) if line.startswith("Tag=")]


@pytest.mark.parametrize(("mangle", "message"), [
    (lambda ln: ln.rsplit(",", 1)[0] + ",HISTFAAA!!not-base64!!", "not an encoded HdrHistogram"),
    (lambda ln: ln.rsplit(",", 1)[0] + ",", "not an encoded HdrHistogram"),
    (lambda ln: ",".join(ln.split(",")[:3] + ln.split(",")[4:]), "not an interval line"),
    (lambda ln: ln + ",extra", "not an interval line"),
    (lambda ln: ln.split(",", 1)[1], "interval without a tag"),
    (lambda ln: "Tag=," + ln.split(",", 1)[1], "not an interval line"),
    (lambda ln: ln.split(",")[0] + ",yesterday," + ",".join(ln.split(",")[2:]), "yesterday"),
])
def test_a_damaged_line_is_an_error_naming_it(mangle, message):
    text, _ = written(seconds=2)
    n = interval_line_numbers(text)[7]  # one in the middle: never a shorter run
    bad = damaged(n, mangle(text.splitlines()[n - 1]))
    with pytest.raises(ConfigError, match=f"^run.hlog:{n}: .*{message}"):
        intervals.parse(bad, "run.hlog")


def test_load_names_the_file(tmp_path):
    with pytest.raises(ConfigError, match="no interval log at .*missing.hlog"):
        intervals.load(tmp_path / "missing.hlog")
    text, _ = written(seconds=1)
    n = interval_line_numbers(text)[2]
    path = tmp_path / "bad.hlog"
    path.write_text(damaged(n, "Tag=raw:GET:/x,1,1,1,@@@"))
    with pytest.raises(ConfigError, match=f"bad.hlog:{n}: "):
        intervals.load(path)
    path.write_bytes(b"#\xff\xfe not ascii\n")
    with pytest.raises(ConfigError, match="unreadable interval log"):
        intervals.load(path)


# ---- HdrHistogram's own reader -------------------------------------------------------------

def read_with_hdrh(path: Path) -> list[hdr.HdrHistogram]:
    reader = HistogramLogReader(str(path), hdr.new_histogram())
    try:
        out = []
        while (h := reader.get_next_interval_histogram()) is not None:
            out.append(h)
        return out
    finally:
        reader.input_file.close()


def test_hdrhistogram_log_reader_reads_it(tmp_path):
    text, wrote = written(start_time_s=T0, seconds=4)
    path = tmp_path / "w.hlog"
    path.write_text(text)
    read = read_with_hdrh(path)
    assert len(read) == len(wrote)
    assert sum(h.get_total_count() for h in read) == sum(
        h.get_total_count() for h in wrote.values())
    for h in read:  # tags and absolute start times as written
        key, kind = parse_interval_tag(h.get_tag())
        t = int(h.get_start_time_stamp() / 1000)
        assert hdr.encode(h) == hdr.encode(wrote[(key, kind, t)])


def test_hdrhistogram_log_reader_reads_the_first_second_of_a_run(tmp_path):
    from harness.loadgen.aggregate import ClosedWindow
    from harness.loadgen.output import RunFiles
    from harness.model.client import ClientWindow, WindowCell

    rng = random.Random(4)
    closed = []
    for s in range(3):
        hists = {key: (filled(rng, 10), filled(rng, 10)) for key in KEYS}
        closed.append(ClosedWindow(
            ClientWindow(t=T0 + s, phase="measured",
                         endpoints={k: WindowCell(count=10) for k in KEYS}), hists))
    files = RunFiles(tmp_path)
    files.begin(T0 + 0.25)  # what the plugin does: the first spawn, mid-second
    files.windows(closed)
    files.close()
    log = intervals.load(tmp_path / "windows.hlog")
    assert len(log.entries) == 3 * len(KEYS) * 2  # the harness reads every second
    read = read_with_hdrh(tmp_path / "windows.hlog")
    assert len(read) == 3 * len(KEYS) * 2
    assert sum(h.get_total_count() for h in read) == 3 * len(KEYS) * 2 * 10


def test_a_last_line_cut_short_by_a_killed_writer_is_dropped_and_said():
    fh = io.StringIO()
    writer = IntervalWriter(fh, 1_700_000_000.5)
    h = hdr.new_histogram()
    hdr.record(h, 1500)
    writer.write(1_700_000_000, "GET /x", "raw", h)
    writer.write(1_700_000_001, "GET /x", "raw", h)
    text = fh.getvalue()
    cut = text[: len(text) - 12]  # the writer died in the middle of the last line
    log = intervals.parse(cut)
    assert log.truncated and log.seconds("raw:GET:/x") == [1_700_000_000]
    assert not intervals.parse(text).truncated
    with pytest.raises(ConfigError, match=":7:"):  # the damaged line, no longer the last
        intervals.parse(cut + "\nTag=raw:GET:/x,1700000002.0,1.0,1.5,HISTFAAAAC\n")
