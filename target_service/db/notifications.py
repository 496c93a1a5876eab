"""What the database's notification channels carry, written and read in one place.

The triggers of migrations 0104-0106 and the KPI refresher send these payloads;
the caches' invalidation listener (`target_service/cache/invalidation.py`) and
the KPI refresher (`target_service/db/kpi_refresher.py`) read them. A payload
that does not parse never raises: the parsers say so (None), and the listener
logs it and takes the safe side (a refresh of unknown users evicts every overview).

* `user_data_changed`: `<table>:<user_id>`; `agents.snapshot:<user_id>` when an
  update changed only agents' stored ElevenLabs snapshots (migration 0106);
* `kpi_dirty` (no payload): a KPI table changed, the view needs a refresh;
* `kpi_refreshed`: `<id>,<id>,...`, or `*` for every user;
* `api_key_changed`: `<user_id>`, or `*` for every user (after a TRUNCATE).
"""

from __future__ import annotations

from collections.abc import Iterable

USER_DATA_CHANGED = "user_data_changed"
KPI_DIRTY = "kpi_dirty"
KPI_REFRESHED = "kpi_refreshed"
API_KEY_CHANGED = "api_key_changed"

SNAPSHOT_ONLY = "agents.snapshot"
"""The `user_data_changed` table part of an update that changed only agents' snapshots."""

MAX_PAYLOAD = 7_000
"""NOTIFY payloads must stay under 8000 bytes; a longer list of users goes as `*`."""


def _is_id(text: str) -> bool:
    """ASCII digits only (`str.isdigit` also accepts `²`, which `int` refuses)."""
    return text.isascii() and text.isdigit()


def parse_user_change(payload: str) -> tuple[str, int] | None:
    """`calls:17` -> ("calls", 17); None for anything malformed."""
    table, _, user = payload.rpartition(":")
    return (table, int(user)) if _is_id(user) else None


def parse_key_owner(payload: str) -> int | None:
    """`17` -> 17; `*` (every user, e.g. after TRUNCATE) or anything malformed -> None."""
    return int(payload) if _is_id(payload) else None


def refreshed_payload(users: Iterable[int], everyone: bool = False) -> str:
    """The `kpi_refreshed` payload for these users; `*` for every user, or when the list
    would not fit in a notification. No users (a change whose users are unknown) is an
    empty payload, which readers take as every user too."""
    if everyone:
        return "*"
    payload = ",".join(map(str, sorted(users)))
    return payload if len(payload) <= MAX_PAYLOAD else "*"


def parse_refreshed(payload: str) -> list[int] | None:
    """`17,23` -> [17, 23]; `*`, empty or anything malformed -> None, meaning every user
    (a reader that cannot tell whose KPIs changed must assume everyone's did)."""
    parts = payload.split(",")
    if payload in ("", "*") or not all(_is_id(p) for p in parts):
        return None
    return [int(p) for p in parts]
