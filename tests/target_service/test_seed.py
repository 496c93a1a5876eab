"""The generator: deterministic, skewed like a real customer base, COPY-loaded."""

from __future__ import annotations

import itertools
import statistics
from datetime import date

import asyncpg

from target_service.db.seed_data import PRESETS, Generator, api_key_for, hash_api_key


def _first_calls(seed: int, n: int = 2000) -> list[tuple]:
    gen = Generator(PRESETS["tiny"], seed, date(2026, 1, 15))
    list(gen.lead_rows())
    return list(itertools.islice(gen.call_rows(), n))


def test_same_seed_same_rows_other_seed_other_rows():
    assert _first_calls(1) == _first_calls(1)
    assert _first_calls(1) != _first_calls(2)


def test_users_and_agents_are_skewed():
    gen = Generator(PRESETS["small"], 42, date(2026, 1, 15))
    weights = sorted((u.weight for u in gen.users), reverse=True)
    assert weights[0] > 20 * statistics.median(weights)  # a few users are far busier
    agents = sorted((len(u.agent_ids) for u in gen.users), reverse=True)
    assert agents[0] >= 3 * agents[len(agents) // 2]


def test_api_keys_are_derivable_but_only_hashes_are_stored():
    assert api_key_for(42, 1) == api_key_for(42, 1) != api_key_for(43, 1)
    gen = Generator(PRESETS["tiny"], 42, date(2026, 1, 15))
    stored = next(gen.user_rows())
    assert api_key_for(42, 1) not in [v for v in stored if isinstance(v, str)]
    assert stored[3] == hash_api_key(api_key_for(42, 1))


async def test_seeded_dataset_is_realistic(shared_dbs, datasets):
    conn = await asyncpg.connect(shared_dbs["naive"])
    try:
        m = datasets.manifest
        counts = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM users) u, (SELECT count(*) FROM calls) c, "
            "(SELECT count(*) FROM leads) l")
        assert counts["u"] == m["counts"]["users"] and counts["c"] == m["counts"]["calls"]
        # lead scores cover 0-100 (every quality bucket has data)
        lo, hi = await conn.fetchrow("SELECT min(score), max(score) FROM lead_analytics")
        assert lo <= 10 and hi >= 90
        # a daily rhythm: business hours carry far more calls than the night
        by_hour = dict(await conn.fetch(
            "SELECT extract(hour FROM created_at)::int, count(*) FROM calls GROUP BY 1"))
        assert by_hour[14] > 5 * by_hour[3]
        # the rollup is exactly the raw calls
        diff = await conn.fetchval(
            """SELECT count(*) FROM (
                 SELECT agent_id, (created_at AT TIME ZONE 'UTC')::date d,
                        extract(hour FROM created_at AT TIME ZONE 'UTC')::int h, count(*) n
                 FROM calls GROUP BY 1, 2, 3) r
               FULL JOIN agent_analytics a
                 ON a.agent_id = r.agent_id AND a.date = r.d AND a.hour = r.h
               WHERE a.calls_count IS DISTINCT FROM r.n""")
        assert diff == 0
        # the manifest's keys authenticate their users
        u = m["users"][0]
        uid = await conn.fetchval("SELECT id FROM users WHERE api_key_hash = $1",
                                  hash_api_key(u["api_key"]))
        assert uid == u["user_id"]
    finally:
        await conn.close()
