"""Overview and analytics: naive vs optimized vs cached, on the `small` dataset.

Each benchmark times the complete fetch of one endpoint's body for the same
busy user, as the service does it (`DashboardService.*_body`: queries plus
JSON encoding), on a warm pool against its own fresh clone of the same seeded
data. HTTP is left out on purpose: this isolates what each profile's data
path costs. `test_overview_cached` is the optimized path behind a warm
DashboardCache (what a repeat request costs).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from target_service.cache.dashboard import DashboardCache
from target_service.cache.memory import MemoryCache, tags_from_key
from target_service.services.dashboard import DashboardService


def _overview(benchmark, profiled, user_id: int, cache: DashboardCache | None = None) -> None:
    service = DashboardService(profiled.db, profiled.settings, cache)
    body, status = benchmark(lambda: profiled.run(service.overview_body(user_id)))
    result = json.loads(body)
    assert result["user_id"] == user_id and result["kpis"]["total_calls"] > 0
    assert status == ("HIT" if cache is not None else None)


def _analytics(benchmark, profiled, user_id: int) -> None:
    service = DashboardService(profiled.db, profiled.settings)
    to = datetime.now(UTC).date()
    start = to - timedelta(days=29)
    body, _ = benchmark(lambda: profiled.run(service.analytics_body(user_id, start, to, "day")))
    result = json.loads(body)
    assert result["user_id"] == user_id and not result["partial"]


def test_overview_naive(benchmark, bench_dbs, busy_user):
    _overview(benchmark, bench_dbs["naive"], busy_user["user_id"])


def test_overview_optimized(benchmark, bench_dbs, busy_user):
    _overview(benchmark, bench_dbs["optimized"], busy_user["user_id"])


def test_overview_cached(benchmark, bench_dbs, busy_user):
    profiled = bench_dbs["optimized"]
    cache = DashboardCache(MemoryCache("bench", tags_of=tags_from_key(2)), overview_ttl=3600,
                           overview_soft_ttl=3600, analytics_ttl=3600, analytics_soft_ttl=3600)
    _overview(benchmark, profiled, busy_user["user_id"], cache)


def test_analytics_naive(benchmark, bench_dbs, busy_user):
    _analytics(benchmark, bench_dbs["naive"], busy_user["user_id"])


def test_analytics_optimized(benchmark, bench_dbs, busy_user):
    _analytics(benchmark, bench_dbs["optimized"], busy_user["user_id"])
