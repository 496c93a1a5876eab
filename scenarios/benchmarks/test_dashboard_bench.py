"""Overview and analytics data fetch, naive vs optimized, on the `small` dataset.

Each benchmark times the complete data fetch of one endpoint for the same
busy user, as the service does it (`DashboardService`), on a warm pool
against its own fresh clone of the same seeded data. HTTP and JSON are left
out on purpose: this isolates what the database work costs in each profile.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from target_service.services.dashboard import DashboardService


def _overview(benchmark, profiled, user_id: int) -> None:
    service = DashboardService(profiled.db, profiled.settings)
    result = benchmark(lambda: profiled.run(service.overview(user_id)))
    assert result.user_id == user_id and result.kpis.total_calls > 0


def _analytics(benchmark, profiled, user_id: int) -> None:
    service = DashboardService(profiled.db, profiled.settings)
    to = datetime.now(UTC).date()
    start = to - timedelta(days=29)
    result = benchmark(lambda: profiled.run(service.analytics(user_id, start, to, "day")))
    assert result.user_id == user_id and not result.partial


def test_overview_naive(benchmark, bench_dbs, busy_user):
    _overview(benchmark, bench_dbs["naive"], busy_user["user_id"])


def test_overview_optimized(benchmark, bench_dbs, busy_user):
    _overview(benchmark, bench_dbs["optimized"], busy_user["user_id"])


def test_analytics_naive(benchmark, bench_dbs, busy_user):
    _analytics(benchmark, bench_dbs["naive"], busy_user["user_id"])


def test_analytics_optimized(benchmark, bench_dbs, busy_user):
    _analytics(benchmark, bench_dbs["optimized"], busy_user["user_id"])
