"""Rules of the domain that several layers share: the KPI window, rounding, row mapping.

These used to live in `services/dashboard.py` and were borrowed from there by
the other services and by the KPI refresher in `db/`, which made `db` depend
on `services`. Here they sit below every layer: this module imports only the
response models (`target_service.schemas`), so services, `db/` and the cache
warmer can all use them while dependencies keep running one way.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from target_service import schemas

KPI_WINDOW_DAYS = 30
"""Length of the dashboard's KPI window, in UTC days, today included."""


def utc_midnight(day: date) -> datetime:
    """The start of `day` in UTC: every date range the API accepts is in UTC days."""
    return datetime.combine(day, time.min, tzinfo=UTC)


def kpi_window_start(now: datetime | None = None) -> datetime:
    """Start of the 30-day KPI window: UTC midnight 29 days before today.

    One definition for the overview, the agent stats and the KPI view's
    refresher, so a number computed live and one read from the view describe
    the same window.
    """
    today = (now or datetime.now(UTC)).astimezone(UTC).date()
    return utc_midnight(today - timedelta(days=KPI_WINDOW_DAYS - 1))


def money(value: Decimal | float) -> float:
    """A NUMERIC amount as a JSON float rounded to 4 places, identical in both profiles."""
    return round(float(value), 4)


def ratio(part: int, whole: int) -> float:
    """`part / whole` rounded to 4 places; 0.0 (not an error) when there is nothing yet."""
    return round(part / whole, 4) if whole else 0.0


def agent_stats(calls: int, completed: int, duration: int,
                cost: Decimal | float) -> schemas.AgentStats:
    """An agent's stats from its raw sums; the overview and the agents page must agree."""
    return schemas.AgentStats(
        calls=calls, completed=completed, success_rate=ratio(completed, calls),
        total_duration_seconds=duration,
        avg_call_duration_seconds=round(duration / calls, 2) if calls else 0.0,
        total_cost=money(cost),
    )


def activity_item(row: Mapping[str, Any]) -> schemas.ActivityItem:
    """One call row (joined with its agent's name) as it appears in every activity list."""
    return schemas.ActivityItem(
        call_id=row["id"], agent_id=row["agent_id"], agent_name=row["agent_name"],
        lead_id=row["lead_id"], status=row["status"], direction=row["direction"],
        duration_seconds=row["duration_seconds"], cost=money(row["cost"]),
        created_at=row["created_at"],
    )
