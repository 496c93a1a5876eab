-- profile: optimized
-- A partial index over recent calls only: smaller, hotter, and what the
-- overview's recent-activity query reads.
--
-- PostgreSQL accepts only IMMUTABLE predicates in a partial index, so "the last
-- 30 days" cannot be written as `now() - interval '30 days'`. The predicate is a
-- literal cutoff instead, recorded in partial_index_cutoffs. A maintenance job
-- (target_service/db/maintenance.py, `harness db maintain`) rolls it forward:
-- it builds the index for a newer cutoff CONCURRENTLY, records it, then drops the
-- old one CONCURRENTLY, so reads never lose an index.
--
-- A query can only use the index when the planner can prove its own predicate
-- implies the cutoff. asyncpg prepares every statement and a *generic* plan
-- sees `$2`, not a value, so the service pool runs with
-- plan_cache_mode=force_custom_plan (see db/pool.py); the test
-- tests/target_service/test_indexes.py proves the index is used through the pool.

CREATE TABLE partial_index_cutoffs (
    index_name  text        PRIMARY KEY,
    table_name  text        NOT NULL,
    purpose     text        NOT NULL UNIQUE,
    cutoff      timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

DO $$
DECLARE
    -- 35 days back from today's UTC midnight: covers the 30-day window with a
    -- margin, so the index stays usable until the job rolls it.
    cut timestamptz := (date_trunc('day', now() AT TIME ZONE 'UTC') - interval '35 days') AT TIME ZONE 'UTC';
    name text := 'calls_recent_' || to_char(cut AT TIME ZONE 'UTC', 'YYYYMMDD');
BEGIN
    EXECUTE format(
        'CREATE INDEX %I ON calls (user_id, created_at, id) WHERE created_at >= %L',
        name, cut);
    INSERT INTO partial_index_cutoffs (index_name, table_name, purpose, cutoff)
    VALUES (name, 'calls', 'recent_calls', cut);
END
$$;
