"""The notification payloads (target_service/db/notifications.py): what the writer sends
reads back as meant, and anything malformed is refused, not guessed."""

from __future__ import annotations

import pytest

from target_service.db.notifications import (
    MAX_PAYLOAD,
    SNAPSHOT_ONLY,
    parse_key_owner,
    parse_refreshed,
    parse_user_change,
    refreshed_payload,
)


@pytest.mark.parametrize("payload, expected", [
    ("calls:17", ("calls", 17)),
    (f"{SNAPSHOT_ONLY}:3", (SNAPSHOT_ONLY, 3)),
    ("calls:", None), ("calls:x", None), ("calls:-1", None), ("", None), ("calls:²", None),
])
def test_a_user_change(payload, expected):
    assert parse_user_change(payload) == expected


def test_a_key_owner():
    assert parse_key_owner("17") == 17
    assert parse_key_owner("*") is None and parse_key_owner("x") is None
    assert parse_key_owner("²") is None


@pytest.mark.parametrize("payload", ["x", "17,x", "17,,23", "17, 23", "²"])
def test_a_malformed_refresh_means_every_user(payload):
    assert parse_refreshed(payload) is None


def test_the_refreshed_users_read_back_and_everyone_is_a_star():
    assert parse_refreshed(refreshed_payload({23, 17})) == [17, 23]
    assert refreshed_payload({1}, everyone=True) == "*"
    assert parse_refreshed(refreshed_payload(set())) is None  # unknown users: everyone
    many = set(range(10_000, 12_000))  # 2,000 five-digit ids do not fit
    assert refreshed_payload(many) == "*" and parse_refreshed("*") is None
    fits = refreshed_payload(set(range(100)))
    assert len(fits) <= MAX_PAYLOAD and parse_refreshed(fits) == list(range(100))


def test_a_refresh_payload_at_the_limit_is_kept_and_one_past_it_is_everyone():
    ids = [10 ** 8 + i for i in range(699)] + [10 ** 9]  # 699 x 9 digits, 10, 699 commas
    at_limit = ",".join(map(str, ids))
    assert len(at_limit) == MAX_PAYLOAD
    assert refreshed_payload(ids) == at_limit
    assert refreshed_payload([*ids, 10 ** 9 + 1]) == "*"
    assert refreshed_payload([*ids[:-1], 10 ** 10]) == "*"  # one character past it
