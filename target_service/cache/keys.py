"""What the cache's entries are tagged with, how they are measured and how a value was served.

Shared by `BoundedCache` (bounded.py), which indexes tags and counts bytes, and
`MemoryCache` (memory.py), whose callers build keys and read statuses.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Hashable
from enum import StrEnum
from typing import Any


class CacheStatus(StrEnum):
    """How a value was served; the `X-Cache` header value (`str(status)` is "HIT" etc.)."""

    HIT = "HIT"
    MISS = "MISS"
    STALE = "STALE"


def pickled_size(value: Any) -> int:
    """The default size measure: bytes of the value pickled with the highest protocol."""
    return len(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))


def user_tag(user_id: Hashable) -> tuple[str, Hashable]:
    """The tag that marks every entry of one user (see `tags_from_key`)."""
    return ("user", user_id)


def tags_from_key(position: int = 2, label: str = "user") -> Callable[[Hashable], tuple]:
    """A `tags_of` for tuple keys: tags each key with `(label, key[position])`.

    With keys `(namespace, schema_version, user_id, ...)` the default tags every
    entry with `user_tag(user_id)`, so `invalidate_tag(user_tag(7))` evicts
    exactly user 7's entries, in O(their number). Keys too short get no tag.
    """

    def tags_of(key: Hashable) -> tuple:
        if isinstance(key, tuple) and len(key) > position:
            return ((label, key[position]),)
        return ()

    return tags_of
