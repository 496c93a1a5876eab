"""The auth cache forgets a user's keys on `api_key_changed`, and a lost feed clears it.

Pure cache objects, no database: the listener's handler is called as asyncpg would
call it, so what each payload does to the caches is pinned here; the service-level
tests (tests/target_service/test_auth_invalidation.py) prove the trigger and the feed.
"""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from target_service.cache.caches import Caches
from target_service.cache.dashboard import DashboardCache
from target_service.cache.invalidation import InvalidationListener
from target_service.cache.memory import MemoryCache, tags_from_key, user_tag
from target_service.db.notifications import parse_key_owner
from target_service.telemetry import ServiceMetrics


def make() -> tuple[Caches, InvalidationListener, ServiceMetrics]:
    metrics = ServiceMetrics(CollectorRegistry())
    families = metrics.cache_families
    dashboard = DashboardCache(
        MemoryCache("dashboard", tags_of=tags_from_key(2), metrics=families),
        overview_ttl=30, overview_soft_ttl=10, analytics_ttl=30, analytics_soft_ttl=10)
    auth = MemoryCache("auth", default_ttl=300, metrics=families)
    caches = Caches(dashboard=dashboard, auth=auth)
    listener = InvalidationListener("postgresql://unused", caches, metrics)
    return caches, listener, metrics


def remember(caches: Caches, key: bytes, user_id: int) -> None:
    """What deps.get_current_user stores: key hash -> user, tagged with the user."""
    assert caches.auth is not None
    caches.auth.set(key, f"user {user_id}", tags=(user_tag(user_id),))


@pytest.mark.parametrize(("payload", "expected"), [
    ("17", 17), ("*", None), ("", None), ("x17", None), ("-3", None)])
def test_parse_key_owner(payload, expected):
    assert parse_key_owner(payload) == expected


def test_a_key_change_forgets_that_users_keys_only_and_keeps_their_data():
    caches, listener, metrics = make()
    remember(caches, b"old-key-of-7", 7)
    remember(caches, b"second-key-of-7", 7)
    remember(caches, b"key-of-8", 8)
    caches.dashboard.cache.set(DashboardCache.overview_key(7), b"{}")
    listener.on_key_changed(None, 1, "api_key_changed", "7")
    assert caches.auth.get(b"old-key-of-7") is None
    assert caches.auth.get(b"second-key-of-7") is None
    assert caches.auth.get(b"key-of-8") == "user 8"
    assert caches.dashboard.has_overview(7)  # a key is not data
    assert metrics.registry.get_sample_value(
        "cache_invalidation_notifications_total", {"channel": "api_key_changed"}) == 1


@pytest.mark.parametrize("payload", ["*", "garbage"])
def test_everyone_or_a_malformed_payload_forgets_every_key(payload):
    caches, listener, _ = make()
    remember(caches, b"a", 1)
    remember(caches, b"b", 2)
    listener.on_key_changed(None, 1, "api_key_changed", payload)
    assert len(caches.auth) == 0


def test_a_lookup_that_started_before_the_key_changed_is_not_cached():
    """deps takes a generation before its query: a notification in between wins."""
    caches, listener, _ = make()
    generation = caches.auth.generation()
    listener.on_key_changed(None, 1, "api_key_changed", "7")  # arrives mid-lookup
    stored = caches.auth.set(b"old-key-of-7", "user 7", tags=(user_tag(7),),
                             generation=generation)
    assert not stored and caches.auth.get(b"old-key-of-7") is None
    other = caches.auth.set(b"key-of-8", "user 8", tags=(user_tag(8),),
                            generation=generation)
    assert other  # another user's lookup is unaffected


def test_losing_the_feed_clears_the_key_lookups_too():
    caches, _, _ = make()
    remember(caches, b"a", 1)
    caches.dashboard.cache.set(DashboardCache.overview_key(1), b"{}")
    assert caches.clear_derived() == 2
    assert len(caches.auth) == 0 and not caches.dashboard.has_overview(1)


def test_without_an_auth_cache_a_key_change_is_nothing():
    caches = Caches()
    assert caches.evict_api_keys(7) == 0 and caches.evict_api_keys(None) == 0
