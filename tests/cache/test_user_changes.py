"""What each `user_data_changed` and `kpi_refreshed` payload evicts (the listener's
handlers, no database).

`<table>:<user>` drops everything derived from that user's rows; `agents.snapshot:<user>`
(migration 0106: only stored ElevenLabs snapshots changed) drops that user's agent
list alone. The trigger's side is tested in tests/target_service/test_caching.py.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from target_service.cache.agents import AgentCache
from target_service.cache.caches import Caches
from target_service.cache.dashboard import DashboardCache
from target_service.cache.invalidation import InvalidationListener
from target_service.cache.memory import MemoryCache, tags_from_key
from target_service.telemetry import ServiceMetrics


def make() -> tuple[Caches, InvalidationListener]:
    metrics = ServiceMetrics(CollectorRegistry())
    families = metrics.cache_families
    dashboard = DashboardCache(
        MemoryCache("dashboard", tags_of=tags_from_key(2), metrics=families),
        overview_ttl=30, overview_soft_ttl=10, analytics_ttl=30, analytics_soft_ttl=10)
    agents = AgentCache(MemoryCache("agents", tags_of=tags_from_key(2), metrics=families),
                        info_ttl=60, stats_ttl=30, config_fresh=30, config_retention=300)
    caches = Caches(dashboard=dashboard, agents=agents)
    for user in (7, 8):
        dashboard.cache.set(DashboardCache.overview_key(user), b"{}")
        agents.cache.set(("agent_info", 1, user), [{"id": user}])
        agents.cache.set(("agent_stats", 1, user), {})
    agents.cache.set(("config", "agent_x"), {"config": {}})
    return caches, InvalidationListener("postgresql://unused", caches, metrics)


def present(caches: Caches, user: int) -> list[bool]:
    agents = caches.agents.cache
    return [caches.dashboard.has_overview(user), ("agent_info", 1, user) in agents,
            ("agent_stats", 1, user) in agents]


def test_a_snapshot_only_change_drops_that_users_agent_list_alone():
    caches, listener = make()
    listener.on_user_changed(None, 1, "user_data_changed", "agents.snapshot:7")
    assert present(caches, 7) == [True, False, True]
    assert present(caches, 8) == [True, True, True]
    assert ("config", "agent_x") in caches.agents.cache


def test_any_other_change_drops_everything_of_that_user():
    caches, listener = make()
    listener.on_user_changed(None, 1, "user_data_changed", "agents:7")
    assert present(caches, 7) == [False, False, False]
    assert present(caches, 8) == [True, True, True]


def test_without_an_agent_cache_a_snapshot_change_is_nothing():
    caches, listener = make()
    caches.agents = None
    listener.on_user_changed(None, 1, "user_data_changed", "agents.snapshot:7")
    assert caches.dashboard.has_overview(7)


def test_a_refresh_of_some_users_drops_their_overviews_again():
    caches, listener = make()
    rewarmed: list[int] = []
    listener.on_overview_evicted = rewarmed.append
    listener.on_kpi_refreshed(None, 1, "kpi_refreshed", "7")
    assert present(caches, 7) == [False, True, True]
    assert present(caches, 8) == [True, True, True]
    assert rewarmed == [7]


def test_a_malformed_refresh_drops_every_overview_and_says_so(caplog):
    """Whose KPIs changed is unknown, so everyone's may have: the safe side."""
    caches, listener = make()
    listener.on_kpi_refreshed(None, 1, "kpi_refreshed", "7,x")
    assert not caches.dashboard.has_overview(7) and not caches.dashboard.has_overview(8)
    assert present(caches, 8)[1:] == [True, True]  # only overviews
    assert "malformed kpi_refreshed notification '7,x'" in caplog.text
