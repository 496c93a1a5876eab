"""A paced user's schedule, and what its intentional waits do to it (pure).

A paced user (`scenarios/common.py`) aims at one task start every `interval`
seconds. The intended start of task n is that of task n-1 plus the interval,
whatever the service did (the wrk2 approach): when responses are slow the
schedule does not slip, and the lateness of a task's start (actual minus
intended) is added to the latency of its requests, which is the correction
for coordinated omission.

A task may also wait *on purpose*: the writer sleeping between polls of the
overview until its write shows, a think time inside a task. That time is the
user's choice, not the service's doing, so it must not make the next task
late. Intentional waits therefore move the schedule, but only by as much of
the task's overrun as they explain:

    slot = intended + interval              the next start, as scheduled
    next = max(slot, min(end, slot + waited))

A task whose waits fit within its interval changes nothing (the offered load
stays what it was); a task that overran only because it waited leaves the next
one on time; lateness caused by slow responses still accumulates exactly as
before. The slots counted for pacing (`due_slots`) follow the moved schedule,
so a writer polling for seconds is not reported as a generator falling behind.

No Locust, no gevent, no clock of its own: the caller passes the times
(`time.monotonic()` seconds), so the arithmetic is unit-tested on its own.
"""

from __future__ import annotations

import math


class Schedule:
    """The intended task starts of one paced user, moved only by intentional waits."""

    def __init__(self, origin: float, interval: float) -> None:
        if interval <= 0:
            raise ValueError("a schedule needs a positive interval")
        self.origin = origin
        self.interval = interval
        self.intended = origin
        """The intended start of the current task."""
        self.shift = 0.0
        """How far intentional waits have moved the schedule in all (seconds)."""
        self._next_slot = 0

    def advance(self, end: float, waited: float = 0.0) -> float:
        """The next task's intended start, for a task that ended at `end` after waiting
        `waited` seconds on purpose: the part of its overrun those waits explain is
        forgiven, none of the rest."""
        slot = self.intended + self.interval
        moved = max(0.0, min(end, slot + max(0.0, waited)) - slot)
        self.intended = slot + moved
        self.shift += moved
        return self.intended

    def lateness(self, start: float) -> float:
        """How late a task that started at `start` is against its intended start (>= 0)."""
        return max(0.0, start - self.intended)

    def due_slots(self, now: float) -> list[float]:
        """The intended slots up to `now` not returned before, in order.

        Slot k lies at `origin + shift + k * interval`: the schedule as it stands, so
        a move takes every slot not yet counted with it (counted ones stay counted)."""
        base = self.origin + self.shift
        last = math.floor((now - base) / self.interval + 1e-9)
        if last < self._next_slot:
            return []
        slots = [base + k * self.interval for k in range(self._next_slot, last + 1)]
        self._next_slot = last + 1
        return slots
