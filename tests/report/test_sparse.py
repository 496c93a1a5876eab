"""The report's fast histogram reading is exactly the slow one: same buckets, same
percentiles, same log, same errors."""

from __future__ import annotations

import random

import pytest

from harness import hdr
from harness.analysis import blocks
from harness.errors import ConfigError
from harness.model import intervals
from harness.outputs.report import series, sparse


def encodings(seed: int = 3) -> list[str | None]:
    rng = random.Random(seed)
    out: list[str | None] = []
    for _ in range(60):
        n = rng.choice([0, 1, 2, 7, 150, 3000])
        h = hdr.new_histogram()
        for _ in range(n):
            hdr.record(h, rng.lognormvariate(9.5, 1.2))
        out.append(hdr.encode(h) if n else rng.choice([None, ""]))
    return out


def test_buckets_are_those_of_the_full_histograms():
    encoded = encodings()
    fast, slow = sparse.window_counts(encoded), blocks.window_counts(encoded)
    assert fast.layout == slow.layout and len(fast) == len(slow)
    for a, b, c, d in zip(fast.index, slow.index, fast.count, slow.count, strict=True):
        assert a.tolist() == b.tolist() and c.tolist() == d.tolist()


def test_window_percentiles_are_hdrhistograms():
    encoded = encodings(4)
    cols = series.sparse_quantiles(sparse.window_counts(encoded), (50, 90, 99, 99.9, 100))
    for w, e in enumerate(encoded):
        if not e:
            assert all(c[w] is None for c in cols)
            continue
        h = hdr.decode(e)
        assert [c[w] for c in cols] == [round(h.get_value_at_percentile(p) / 1000, 3)
                                        for p in (50, 90, 99, 99.9, 100)]


def log_text(encoded: list[str | None]) -> str:
    lines = ["#[header]"]
    for t, e in enumerate(encoded):
        if e:
            lines.append(f"Tag=raw:GET:/api/v1/agents,{1000 + t}.000,1.000,1.0,{e}")
            lines.append(f"Tag=corrected:GET:/api/v1/agents,{1000 + t}.000,1.000,1.0,{e}")
    return "\n".join(lines) + "\n"


def test_parse_log_is_intervals_parse():
    text = log_text(encodings(5))
    fast, decoded = sparse.parse_log(text)
    slow = intervals.parse(text)
    assert fast.entries == slow.entries and not fast.truncated
    assert len(decoded) == len({e for e in encodings(5) if e})
    cut, _ = sparse.parse_log(text[:-20])
    assert cut.truncated and cut.entries == intervals.parse(text[:-20]).entries


@pytest.mark.parametrize("bad, why", [
    ("Tag=raw:GET:/x,1,1,1,bm90LWEtaGlzdG9ncmFt\n", "not an encoded HdrHistogram"),
    ("1,1,1,abc\n", "interval without a tag"),
    ("Tag=raw:GET:/x,1,1\n", "not an interval line"),
])
def test_a_damaged_line_is_named(bad, why):
    text = log_text(encodings(6)[:3]) + bad
    with pytest.raises(ConfigError, match=why) as info:
        sparse.parse_log(text, "windows.hlog")
    assert "windows.hlog:" in str(info.value)
    with pytest.raises(ConfigError):
        intervals.parse(text)
