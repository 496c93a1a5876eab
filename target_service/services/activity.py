"""The activity feed (keyset pagination) and the call write path.

Keyset, not OFFSET: page N costs the same as page 1, and a call inserted
while a client pages does not shift rows between pages. The cursor is opaque
to clients (base64 of the last row's `created_at` and id); a cursor that does
not decode is a 422, not a 500.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg

from target_service import schemas
from target_service.cache.caches import Caches
from target_service.db.pool import Database
from target_service.db.queries import calls as q
from target_service.domain import activity_item, money
from target_service.errors import InvalidParameter, NotFound


def encode_cursor(created_at: datetime, call_id: int) -> str:
    raw = f"{created_at.astimezone(UTC).isoformat()}|{call_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """The (created_at, id) a cursor points at; InvalidParameter when it is not ours."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        text = base64.urlsafe_b64decode(padded.encode()).decode()
        stamp, call_id = text.split("|")
        created_at = datetime.fromisoformat(stamp)
        if created_at.tzinfo is None:
            raise ValueError("naive timestamp")
        number = int(call_id)
        if number <= 0:
            raise ValueError("id")
        return created_at, number
    except (ValueError, UnicodeDecodeError, binascii.Error) as exc:
        raise InvalidParameter("malformed 'before' cursor") from exc


class ActivityService:
    """Reads the activity feed and records calls."""

    def __init__(self, db: Database, caches: Caches | None = None) -> None:
        self.db = db
        self.caches = caches

    async def page(self, user_id: int, limit: int, before: str | None) -> schemas.ActivityPage:
        if before is None:
            rows = await self.db.fetch("activity_first_page", q.ACTIVITY_FIRST_PAGE, user_id,
                                       limit)
        else:
            created_at, call_id = decode_cursor(before)
            rows = await self.db.fetch("activity_page_before", q.ACTIVITY_PAGE_BEFORE, user_id,
                                       limit, created_at, call_id)
        items = [activity_item(r) for r in rows]
        next_cursor = (encode_cursor(rows[-1]["created_at"], rows[-1]["id"])
                       if len(rows) == limit else None)
        return schemas.ActivityPage(user_id=user_id, items=items, next_cursor=next_cursor)

    async def record_call(self, user_id: int, call: schemas.CallCreate) -> schemas.CallCreated:
        """Insert a call and keep the rollups exact, in one transaction."""
        async with self.db.acquire() as conn, conn.transaction():
            if await self.db.fetchval("agent_owned", q.AGENT_OWNED, user_id, call.agent_id,
                                      conn=conn) is None:
                raise NotFound(f"agent {call.agent_id} not found")
            if call.lead_id is not None and await self.db.fetchval(
                    "lead_owned", q.LEAD_OWNED, user_id, call.lead_id, conn=conn) is None:
                raise NotFound(f"lead {call.lead_id} not found")
            cost = Decimal(str(round(call.cost, 4)))
            row = await self._insert(conn, user_id, call, cost)
            completed = 1 if call.status == "completed" else 0
            await self.db.fetch("upsert_agent_analytics", q.UPSERT_AGENT_ANALYTICS, user_id,
                                call.agent_id, row["created_at"], completed,
                                call.duration_seconds, cost, conn=conn)
            if call.lead_id is not None:
                await self.db.fetch("touch_lead_analytics", q.TOUCH_LEAD_ANALYTICS, user_id,
                                    call.lead_id, row["created_at"], conn=conn)
        if self.caches is not None:
            # this process reads its own write at once; the others hear it from
            # user_data_changed, and overviews are evicted again on kpi_refreshed
            self.caches.evict_user(user_id)
        return schemas.CallCreated(
            user_id=user_id, call_id=row["id"], agent_id=call.agent_id, lead_id=call.lead_id,
            status=call.status, direction=call.direction,
            duration_seconds=call.duration_seconds, cost=money(cost),
            created_at=row["created_at"])

    async def _insert(self, conn: asyncpg.Connection, user_id: int, call: schemas.CallCreate,
                      cost: Decimal) -> asyncpg.Record:
        row = await self.db.fetchrow("insert_call", q.INSERT_CALL, user_id, call.agent_id,
                                     call.lead_id, call.status, call.direction,
                                     call.duration_seconds, cost, conn=conn)
        assert row is not None
        return row
