"""The paced schedule's arithmetic (`harness.loadgen.pacing.Schedule`), pure.

What the coordinated-omission correction charges: lateness that slow responses
caused accumulates as wrk2 would charge it; time a task waited on purpose moves
the schedule instead, but only as far as it made the task overrun.
"""

from __future__ import annotations

import pytest

from harness.loadgen.pacing import Schedule


def run_tasks(schedule: Schedule, tasks: list[tuple[float, float]]) -> list[float]:
    """Run tasks back to back as `DashboardApiUser` does: each starts at its intended
    start or, when that has passed, as soon as the previous one ended; (busy seconds,
    waited seconds) each. Returns each task's lateness."""
    now, late = schedule.intended, []
    for busy, waited in tasks:
        start = max(now, schedule.intended)
        late.append(schedule.lateness(start))
        now = start + busy + waited
        schedule.advance(now, waited)
    return late


def test_on_time_tasks_keep_the_interval_exactly():
    s = Schedule(100.0, 2.0)
    assert run_tasks(s, [(0.5, 0.0)] * 4) == [0.0] * 4
    assert s.intended == pytest.approx(108.0) and s.shift == 0.0


def test_slow_responses_accumulate_lateness_as_wrk2_charges_it():
    """3 s of service time per 2 s slot: each task starts 1 s later than the one before."""
    late = run_tasks(Schedule(0.0, 2.0), [(3.0, 0.0)] * 4)
    assert late == pytest.approx([0.0, 1.0, 2.0, 3.0])


def test_waits_that_fit_in_the_interval_change_nothing():
    """A think time inside an on-time task neither delays nor hurries the schedule: the
    offered load stays what it was."""
    s = Schedule(0.0, 5.0)
    assert run_tasks(s, [(0.2, 1.5)] * 5) == [0.0] * 5
    assert s.intended == pytest.approx(25.0) and s.shift == 0.0


def test_a_task_that_overran_only_because_it_waited_leaves_the_next_on_time():
    """The issue's writer: a 5 s slot, a write that takes 10 s to show (polled), so
    each task lasts ~10 s. Without the waits forgiven the 4th task would start 15 s
    late and its requests be charged 15 s; with them, never late."""
    tasks = [(0.3, 9.7)] * 4
    assert run_tasks(Schedule(0.0, 5.0), tasks) == [0.0] * 4
    unforgiven = Schedule(0.0, 5.0)
    now, late = 0.0, []
    for busy, waited in tasks:  # the same tasks, their waits not declared
        start = max(now, unforgiven.intended)
        late.append(unforgiven.lateness(start))
        now = start + busy + waited
        unforgiven.advance(now, 0.0)
    assert late == pytest.approx([0.0, 5.0, 10.0, 15.0])


def test_only_the_part_of_the_overrun_the_waits_explain_is_forgiven():
    """4 s of slow responses plus 3 s of waiting in a 2 s slot: 2 s of the 5 s overrun are
    the service's, so the next task is 2 s late, not 0 and not 5."""
    s = Schedule(0.0, 2.0)
    assert s.advance(7.0, waited=3.0) == pytest.approx(5.0)
    assert s.lateness(7.0) == pytest.approx(2.0)
    assert s.shift == pytest.approx(3.0)


def test_waits_never_move_the_schedule_past_the_task_s_end_or_backwards():
    s = Schedule(0.0, 2.0)
    assert s.advance(3.0, waited=10.0) == pytest.approx(3.0)  # capped: not in the future
    assert s.shift == pytest.approx(1.0)
    assert s.advance(3.5, waited=-1.0) == pytest.approx(5.0)  # nonsense waits count as 0


def test_service_debt_is_not_forgiven_by_a_later_wait():
    """Lateness the service caused earlier stays: a wait forgives only itself."""
    s = Schedule(0.0, 1.0)
    late = run_tasks(s, [(3.0, 0.0), (3.0, 0.0), (0.1, 0.5)])
    assert late == pytest.approx([0.0, 2.0, 4.0])
    # the third task started at 6.0, ended at 6.6; slot 3 was at 3.0 and it waited 0.5
    assert s.intended == pytest.approx(3.5) and s.lateness(6.6) == pytest.approx(3.1)


def test_due_slots_count_the_schedule_as_it_stands():
    s = Schedule(10.0, 1.0)
    assert s.due_slots(9.5) == []
    assert s.due_slots(12.0) == pytest.approx([10.0, 11.0, 12.0])
    assert s.due_slots(12.5) == []  # never counted twice
    s.intended = 12.0
    s.advance(15.0, waited=2.5)  # slot 13.0 moved to 15.0: the uncounted slots move with it
    assert s.shift == pytest.approx(2.0)
    assert s.due_slots(15.0) == pytest.approx([15.0])  # slot index 3, at 10 + 2 + 3
    assert s.due_slots(17.2) == pytest.approx([16.0, 17.0])


def test_a_writer_polling_for_seconds_is_not_a_pacing_shortfall():
    """Slots follow the moved schedule: one slot per task started, not two."""
    s = Schedule(0.0, 5.0)
    now, started, slots = 0.0, 0, 0
    for _ in range(6):
        start = max(now, s.intended)
        started += 1
        slots += len(s.due_slots(start))
        now = start + 10.0
        s.advance(now, waited=9.8)
    slots += len(s.due_slots(now))
    assert started == 6 and slots == 7  # the 7th is the next one, due as the last ended


def test_an_interval_must_be_positive():
    with pytest.raises(ValueError, match="positive"):
        Schedule(0.0, 0.0)
