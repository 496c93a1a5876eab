"""Generations: refuse to cache data that was read before an invalidation.

The race this closes: a request misses, starts reading user 7's KPIs, a call
for user 7 is committed, the change notification evicts user 7's entries, and
then the read that started *before* the write finishes and puts pre-write
numbers back into the cache, where they stay until the TTL. Evicting is not
enough; the late write has to be refused.

Every invalidation bumps a sequence number and remembers what it covered (a
key, a tag, a predicate, or everything) and when. A reader takes a
`Generation` *before* it reads the source of truth; a write carrying that
generation is refused if anything covering its key or tags was invalidated
since. `MemoryCache` does this for its own loads; callers that fill the cache
themselves (`set_many` after a batch query) pass `generation=` explicitly.

Records are kept for `max_age` seconds only, so memory stays bounded by the
invalidation rate; a generation older than that is refused whenever anything at
all was invalidated since it was taken (the safe answer once the record that
would have decided may be gone).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Generation:
    """A point in a cache's invalidation history, taken before reading the source."""

    seq: int
    taken_at: float


class InvalidationLog:
    """Recent invalidations of one cache, answering "may this read still be cached?"."""

    def __init__(self, clock: Callable[[], float], max_age: float) -> None:
        if max_age <= 0:
            raise ValueError("max_age must be positive")
        self._clock = clock
        self._max_age = max_age
        self._seq = 0
        self._all_seq = 0
        # key/tag -> (seq, at); ordered oldest first so pruning pops from the front.
        self._keys: OrderedDict[Hashable, tuple[int, float]] = OrderedDict()
        self._tags: OrderedDict[Hashable, tuple[int, float]] = OrderedDict()
        self._predicates: deque[tuple[int, float, Callable[[Hashable], bool]]] = deque()

    def current(self) -> Generation:
        return Generation(self._seq, self._clock())

    def record_keys(self, keys: Iterable[Hashable]) -> None:
        self._record(self._keys, keys)

    def record_tags(self, tags: Iterable[Hashable]) -> None:
        self._record(self._tags, tags)

    def record_predicate(self, predicate: Callable[[Hashable], bool]) -> None:
        now = self._clock()
        self._seq += 1
        self._predicates.append((self._seq, now, predicate))
        self._prune(now)

    def record_all(self) -> None:
        """Everything was invalidated: every older generation is refused from now on."""
        self._seq += 1
        self._all_seq = self._seq
        # Older records can no longer change an answer.
        self._keys.clear()
        self._tags.clear()
        self._predicates.clear()

    def allows(self, key: Hashable, tags: Iterable[Hashable], generation: Generation) -> bool:
        """True if nothing covering `key` or `tags` was invalidated after `generation`."""
        since = generation.seq
        if since >= self._seq:
            return True  # nothing at all was invalidated since: the common case
        if self._all_seq > since:
            return False
        if self._clock() - generation.taken_at > self._max_age:
            return False  # the records that would decide may have been pruned
        record = self._keys.get(key)
        if record is not None and record[0] > since:
            return False
        for tag in tags:
            record = self._tags.get(tag)
            if record is not None and record[0] > since:
                return False
        for seq, _at, predicate in reversed(self._predicates):
            if seq <= since:
                break
            try:
                matches = predicate(key)
            except Exception:  # noqa: BLE001 - a predicate written for other key shapes: refuse, safely
                matches = True
            if matches:
                return False
        return True

    def _record(
        self, records: OrderedDict[Hashable, tuple[int, float]], items: Iterable[Hashable]
    ) -> None:
        now = self._clock()
        self._seq += 1
        for item in items:
            records[item] = (self._seq, now)
            records.move_to_end(item)
        self._prune(now)

    def _prune(self, now: float) -> None:
        horizon = now - self._max_age
        for records in (self._keys, self._tags):
            while records:
                first = next(iter(records.values()))
                if first[1] >= horizon:
                    break
                records.popitem(last=False)
        while self._predicates and self._predicates[0][1] < horizon:
            self._predicates.popleft()
