"""Acknowledged writes on their way to `client.json`: recorder -> delta -> master, pure."""

from __future__ import annotations

import msgpack

from harness.loadgen.aggregate import RunAggregate
from harness.loadgen.recorder import Recorder
from harness.model.client import AcknowledgedWrites, ClientDoc, Delta

T0 = 1_700_000_000


def over_the_wire(delta: Delta) -> Delta:
    """What the master reads back of a worker's report (msgpack, as Locust sends it)."""
    return Delta.model_validate(msgpack.unpackb(msgpack.packb(delta.model_dump()),
                                                strict_map_key=False))


def test_a_delta_carries_the_acknowledged_ids_once_and_in_order():
    rec = Recorder(clock=lambda: T0)
    assert rec.empty
    rec.acknowledged(42)
    assert not rec.empty  # a worker with only acknowledgements still reports them
    rec.acknowledged(7)
    rec.acknowledged(42)
    delta = over_the_wire(rec.take_delta())
    assert delta.acknowledged == [42, 7, 42]
    assert rec.empty and rec.take_delta().acknowledged == []


def test_the_master_keeps_every_id_of_every_worker_and_counts_duplicates():
    agg = RunAggregate(warmup_s=5.0)
    agg.start(T0)
    a, b = Recorder(clock=lambda: T0), Recorder(clock=lambda: T0)
    for i in (1, 2, 3):
        a.acknowledged(i)
    b.acknowledged(10)
    b.acknowledged(2)  # another worker acknowledged row 2 as well: a duplicate
    agg.merge(over_the_wire(a.take_delta()), "w1")
    agg.merge(over_the_wire(b.take_delta()), "w2")
    a.acknowledged(3)  # and the same worker again, in a later delta
    a.acknowledged(11)
    agg.merge(over_the_wire(a.take_delta(final=True)), "w1")
    agg.stopping(T0 + 10)
    agg.take_closed(float("inf"))
    doc = agg.client_doc("2.x", "master", 2)
    assert doc.writes == AcknowledgedWrites(ids=[1, 2, 3, 10, 11], duplicates=2)
    back = ClientDoc.model_validate_json(doc.model_dump_json())
    assert back.writes == doc.writes


def test_acknowledgements_of_every_phase_count():
    """A write acknowledged during the warm-up or the cool-down must be stored too: the
    ids are kept for the whole run, not per measured window."""
    agg = RunAggregate(warmup_s=30.0)
    agg.start(T0)  # everything below happens during the warm-up
    rec = Recorder(clock=lambda: T0 + 1)
    rec.acknowledged(5)
    agg.merge(rec.take_delta(), "local", "local")
    agg.stopping(T0 + 2)
    rec.acknowledged(6)
    agg.merge(rec.take_delta(final=True), "local", "local")
    agg.take_closed(float("inf"))
    assert agg.client_doc("2.x", "local", 0).writes.ids == [5, 6]


def test_a_run_without_writes_says_so_with_an_empty_record():
    agg = RunAggregate()
    agg.start(T0)
    agg.stopping(T0 + 1)
    agg.take_closed(float("inf"))
    assert agg.client_doc("2.x", "local", 0).writes == AcknowledgedWrites()
    # and a client.json written before writes were recorded still reads
    raw = agg.client_doc("2.x", "local", 0).model_dump()
    del raw["writes"]
    assert ClientDoc.model_validate(raw).writes.ids == []
