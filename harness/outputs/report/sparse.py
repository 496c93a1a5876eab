"""Encoded HdrHistograms straight to their non-zero buckets, without building histograms.

The page reads every window of every endpoint of both runs (per-second percentiles, the
shift function's blocks): 7,200 histograms for a 10-minute run against its baseline.
`hdr.decode` builds a full `HdrHistogram` for each (a 23,552-bucket array allocated,
then scanned for its non-zero buckets by `blocks.window_counts`), which was 80% of the
time to render a page. Here the same bytes are decoded by hdrh's own C varint decoder
(`pyhdrh.decode`, what `HdrHistogram.decode` calls) into one reused buffer, and only
the range it reports as used is read and cleared again.

Exact: the result is `blocks.window_counts` of the same encodings (a test compares
them). Anything this fast path does not recognise (another layout, another cookie) goes
through `hdr.decode` as before.
"""

from __future__ import annotations

import base64
import ctypes
import zlib
from collections.abc import Iterable

import numpy as np
from hdrh import codec
from pyhdrh import decode as varint_decode  # hdrh's C extension

from harness import hdr
from harness.analysis import blocks
from harness.model import intervals
from harness.model.intervals import IntervalLog

_REFERENCE = hdr.new_histogram()
LAYOUT = blocks.Layout.of(_REFERENCE)
_COUNTS_LEN = _REFERENCE.counts_len
_BUFFER = (ctypes.c_uint64 * _COUNTS_LEN)()
_VIEW = np.ctypeslib.as_array(_BUFFER)
_EMPTY_I = np.zeros(0, dtype=np.int64)
_EMPTY_C = np.zeros(0, dtype=np.float64)


def _fast(encoded: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(indices, counts) of one encoding, or None when it is not the harness's layout."""
    raw = base64.b64decode(encoded)
    if len(raw) < codec.ext_header_size:
        return None
    data = zlib.decompress(raw[codec.ext_header_size:])
    head = codec.PayloadHeader.from_buffer_copy(data)
    if (codec.get_cookie_base(head.cookie) != codec.V2_ENCODING_COOKIE_BASE
            or head.significant_figures != hdr.SIGNIFICANT_FIGURES
            or head.lowest_trackable_value != hdr.LOWEST_US
            or head.highest_trackable_value != hdr.HIGHEST_US
            or head.normalizing_index_offset != 0):
        return None
    used = varint_decode(data, codec.payload_header_size, ctypes.addressof(_BUFFER),
                         _COUNTS_LEN, 8)
    if not used["total"]:
        return _EMPTY_I, _EMPTY_C
    lo, hi = used["min_nonzero_index"], used["max_nonzero_index"] + 1
    part = _VIEW[lo:hi]
    nz = np.flatnonzero(part)
    counts = part[nz].astype(np.float64)
    part[:] = 0
    return nz + lo, counts


Sparse = tuple[np.ndarray, np.ndarray]


def buckets(encoded: str) -> Sparse:
    """The non-zero (counts index, count) of one encoding; ValueError on garbage."""
    try:
        found = _fast(encoded)
    except (ValueError, TypeError, zlib.error):
        found = None
    if found is None:  # not ours to read fast: the slow, general way (or its error)
        slow = blocks.window_counts([encoded])
        if slow.layout != LAYOUT:
            raise ValueError(f"histograms of different layouts: {slow.layout} vs {LAYOUT}")
        found = (slow.index[0], slow.count[0])
    return found


def window_counts(encodings: Iterable[str | None],
                  known: dict[str, Sparse] | None = None) -> blocks.WindowCounts:
    """`blocks.window_counts` of encoded histograms (None or "" for an empty window);
    `known`: encodings already decoded (by `parse_log`)."""
    index: list[np.ndarray] = []
    count: list[np.ndarray] = []
    for encoded in encodings:
        if not encoded:
            index.append(_EMPTY_I)
            count.append(_EMPTY_C)
            continue
        found = known.get(encoded) if known else None
        if found is None:
            found = buckets(encoded)
        index.append(found[0])
        count.append(found[1])
    return blocks.WindowCounts(LAYOUT, tuple(index), tuple(count))


def parse_log(text: str, source: str = "interval log") -> tuple[IntervalLog, dict[str, Sparse]]:
    """`intervals.parse`, as strict, with each line's histogram checked by decoding it
    here, fast, instead of into a full HdrHistogram: the decoded buckets of the raw
    lines come back too (encoding -> buckets), for the raw windows' charts."""
    return intervals.parse_checked(text, source, buckets)
