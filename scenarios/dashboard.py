"""Dashboard browsing: the overview, charts over varied date ranges, the activity feed.

    locust -f scenarios/dashboard.py --host http://127.0.0.1:PORT --harness-manifest dataset.json
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from locust import task

from scenarios.common import DashboardApiUser

MAX_RANGE_DAYS = 366  # the service's cap (inclusive UTC days)
OVERVIEW = "/api/v1/dashboard/overview"
ANALYTICS = "/api/v1/dashboard/analytics"
ACTIVITY = "/api/v1/activity"


class DashboardUser(DashboardApiUser):
    """Someone with the dashboard open: mostly the overview, sometimes charts or the feed.

    One task every 2 s (think time) per user."""

    pace = 0.5

    @task(5)
    def overview(self) -> None:
        self.api("GET", OVERVIEW)

    @task(3)
    def analytics(self) -> None:
        start, end, granularity = analytics_range(self.rng)
        self.api("GET", ANALYTICS, params={"from": start.isoformat(), "to": end.isoformat(),
                                           "granularity": granularity})

    @task(2)
    def activity(self) -> None:
        """The feed, following `next_cursor` for a few pages like someone scrolling."""
        cursor = None
        limit = self.rng.choice((10, 20, 20, 50))
        for _ in range(self.rng.randint(1, 4)):
            body = self.api("GET", ACTIVITY, params={"limit": limit, "before": cursor})
            cursor = body.get("next_cursor") if body else None
            if not cursor:
                break


def analytics_range(rng) -> tuple:
    """A date range people pick on a dashboard (last week .. last year), and a granularity
    that suits it; always within the service's 366-day cap."""
    today = datetime.now(UTC).date()
    days = rng.choice((7, 14, 30, 30, 30, 90, 180, 365, 366))
    end = today - timedelta(days=rng.choice((0, 0, 0, 1, 7, 30)))
    start = end - timedelta(days=min(days, MAX_RANGE_DAYS) - 1)
    if days <= 31:
        granularity = rng.choice(("day", "day", "week"))
    elif days <= 120:
        granularity = rng.choice(("day", "week", "week"))
    else:
        granularity = rng.choice(("week", "month", "month"))
    return start, end, granularity
