"""harness.hdr: one histogram shape everywhere, exact merges, a portable encoding."""

from __future__ import annotations

import random
import subprocess
import sys

import pytest

from harness import hdr


def filled(values) -> hdr.HdrHistogram:
    h = hdr.new_histogram()
    for v in values:
        hdr.record(h, v)
    return h


def test_shape_is_microseconds_1us_to_1h_3_digits():
    h = hdr.new_histogram()
    assert h.lowest_trackable_value == 1
    assert h.highest_trackable_value == 3_600_000_000
    assert h.significant_figures == 3


def test_record_clamps_instead_of_dropping():
    h = hdr.new_histogram()
    hdr.record(h, 0.2)  # below 1 µs
    hdr.record(h, -5)
    hdr.record(h, 10 * 3_600_000_000)  # ten hours: a raw HdrHistogram would drop it
    assert h.get_total_count() == 3
    assert h.get_min_value() <= 1
    assert h.get_max_value() >= 3_600_000_000 * 0.999


def test_encode_decode_round_trip_is_exact():
    rng = random.Random(1)
    h = filled(rng.lognormvariate(9, 1.2) for _ in range(5000))
    s = hdr.encode(h)
    assert isinstance(s, str) and s.startswith("HISTF")
    back = hdr.decode(s)
    assert back.get_total_count() == 5000
    for p in (50, 90, 99, 99.9, 100):
        assert back.get_value_at_percentile(p) == h.get_value_at_percentile(p)
    assert back.get_min_value() == h.get_min_value()
    assert back.get_max_value() == h.get_max_value()
    assert hdr.decode(s.encode()).get_total_count() == 5000  # bytes accepted too


def test_decode_garbage_is_a_value_error():
    with pytest.raises(ValueError):
        hdr.decode("not a histogram")


def test_merge_is_exact_and_order_free():
    rng = random.Random(2)
    parts = [[rng.randint(100, 2_000_000) for _ in range(rng.randint(0, 700))] for _ in range(5)]
    whole = filled(v for part in parts for v in part)
    merged = hdr.merge([filled(p) for p in parts])
    merged_rev = hdr.merge([hdr.encode(filled(p)) for p in reversed(parts)])  # encodings too
    for m in (merged, merged_rev):
        assert m.get_total_count() == whole.get_total_count()
        assert m.get_min_value() == whole.get_min_value()  # not 0 from an empty part
        assert m.get_max_value() == whole.get_max_value()
        for p in (1, 50, 95, 99, 99.9):
            assert m.get_value_at_percentile(p) == whole.get_value_at_percentile(p)


def test_merge_of_nothing_is_empty():
    assert hdr.merge([]).get_total_count() == 0
    assert hdr.merge([hdr.new_histogram()]).get_total_count() == 0


def test_add_into_keeps_the_minimum():
    target = hdr.new_histogram()
    hdr.add_into(target, filled([5000, 7000]))
    assert target.get_min_value() == filled([5000]).get_min_value()
    hdr.add_into(target, filled([300]))
    hdr.add_into(target, hdr.new_histogram())
    assert target.get_total_count() == 3
    assert target.get_min_value() == filled([300]).get_min_value()


def test_summary_in_milliseconds():
    h = filled([1000] * 50 + [2000] * 40 + [10_000] * 9 + [100_000])  # µs
    s = hdr.summary(h)
    assert s["count"] == 100
    assert s["p50"] == pytest.approx(1.0, rel=1e-3)
    assert s["p90"] == pytest.approx(2.0, rel=1e-3)
    assert s["p95"] == pytest.approx(10.0, rel=1e-3)
    assert s["p99"] == pytest.approx(10.0, rel=1e-3)
    assert s["p999"] == pytest.approx(100.0, rel=1e-3)
    assert s["max"] == pytest.approx(100.0, rel=1e-3)
    assert s["min"] == pytest.approx(1.0, rel=1e-3)
    assert s["mean"] == pytest.approx((50 * 1 + 40 * 2 + 9 * 10 + 100) / 100, rel=1e-2)


def test_summary_of_empty_histogram_has_no_numbers():
    s = hdr.summary(hdr.new_histogram())
    assert s["count"] == 0
    assert all(v is None for k, v in s.items() if k != "count")


def test_pure_modules_never_import_locust_or_gevent():
    code = ("import sys, harness.hdr, harness.loadgen.recorder, harness.loadgen.aggregate, harness.model.client, harness.model.result, harness.analysis.collect, scenarios; "
            "bad = [m for m in ('locust', 'gevent') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize("seed", range(8))
def test_vectorized_percentiles_and_mean_equal_hdrh_exactly(seed):
    """hdr.summary answers with numpy what hdrh computes by walking its buckets."""
    import random

    rng = random.Random(seed)
    h = hdr.new_histogram()
    for _ in range(rng.choice([1, 3, 200, 4000])):
        hdr.record(h, rng.lognormvariate(rng.uniform(2, 14), rng.uniform(0.1, 2.0)))
    pcts = [0, 0.1, 1, 10, 50, 90, 95, 99, 99.9, 99.99, 100]
    assert hdr.values_at_percentiles(h, pcts) == [h.get_value_at_percentile(p) for p in pcts]
    assert hdr.mean_value(h) == pytest.approx(h.get_mean_value(), rel=1e-12)
    decoded = hdr.decode(hdr.encode(h))  # decoded histograms share the layout
    assert hdr.values_at_percentiles(decoded, pcts) == hdr.values_at_percentiles(h, pcts)


def test_percentiles_stay_exact_when_hdrh_lost_track_of_the_minimum():
    """hdrh's own `add` takes min() with an empty histogram's 0 (see hdr.merge); the fast
    path must not trust a wrong minimum or maximum."""
    h = filled([1000, 2000, 3000])
    h.min_value = 2500  # what a careless merge can leave behind
    assert hdr.values_at_percentiles(h, [0, 50, 100]) == \
        [h.get_value_at_percentile(p) for p in (0, 50, 100)]
    assert hdr.mean_value(h) == pytest.approx(h.get_mean_value(), rel=1e-12)
