-- profile: optimized
-- 30-day KPIs per user, precomputed. The window is calendar days in UTC
-- (today and the 29 days before), the same definition the naive path computes
-- from raw tables, so both profiles return identical numbers.
--
-- Freshness: statement-level triggers NOTIFY `kpi_dirty` (once per statement,
-- never per row); the service's refresher (target_service/db/kpi_refresher.py)
-- debounces those notifications and runs REFRESH ... CONCURRENTLY, which needs
-- the unique index below and never blocks readers.

CREATE MATERIALIZED VIEW user_kpi_summary AS
WITH bounds AS (
    SELECT (date_trunc('day', now() AT TIME ZONE 'UTC') - interval '29 days') AT TIME ZONE 'UTC'
           AS window_start
),
call_kpis AS (
    SELECT c.user_id,
           count(*)                                      AS total_calls,
           count(*) FILTER (WHERE c.status = 'completed') AS completed_calls,
           sum(c.duration_seconds)                       AS total_duration_seconds,
           sum(c.cost)                                   AS total_cost,
           count(DISTINCT c.agent_id)                    AS active_agents,
           max(c.created_at)                             AS last_call_at
    FROM calls c, bounds b
    WHERE c.created_at >= b.window_start
    GROUP BY c.user_id
),
lead_kpis AS (
    SELECT l.user_id,
           count(*)                                   AS new_leads,
           count(*) FILTER (WHERE la.score >= 70)     AS qualified_leads,
           count(la.score)                            AS scored_leads,
           sum(la.score)                              AS score_sum
    FROM leads l
    LEFT JOIN lead_analytics la ON la.lead_id = l.id, bounds b
    WHERE l.created_at >= b.window_start
    GROUP BY l.user_id
)
SELECT u.id                                        AS user_id,
       b.window_start                              AS window_start,
       coalesce(ck.total_calls, 0)                 AS total_calls,
       coalesce(ck.completed_calls, 0)             AS completed_calls,
       coalesce(ck.total_duration_seconds, 0)      AS total_duration_seconds,
       coalesce(ck.total_cost, 0)                  AS total_cost,
       coalesce(ck.active_agents, 0)               AS active_agents,
       ck.last_call_at                             AS last_call_at,
       coalesce(lk.new_leads, 0)                   AS new_leads,
       coalesce(lk.qualified_leads, 0)             AS qualified_leads,
       coalesce(lk.scored_leads, 0)                AS scored_leads,
       coalesce(lk.score_sum, 0)                   AS score_sum,
       now()                                       AS refreshed_at
FROM users u
CROSS JOIN bounds b
LEFT JOIN call_kpis ck ON ck.user_id = u.id
LEFT JOIN lead_kpis lk ON lk.user_id = u.id;

CREATE UNIQUE INDEX user_kpi_summary_user_id_idx ON user_kpi_summary (user_id);

CREATE FUNCTION notify_kpi_dirty() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- payload names the table only; the refresher recomputes the whole view.
    PERFORM pg_notify('kpi_dirty', TG_TABLE_NAME);
    RETURN NULL;
END
$$;

CREATE TRIGGER calls_kpi_dirty AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON calls
    FOR EACH STATEMENT EXECUTE FUNCTION notify_kpi_dirty();
CREATE TRIGGER leads_kpi_dirty AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON leads
    FOR EACH STATEMENT EXECUTE FUNCTION notify_kpi_dirty();
CREATE TRIGGER lead_analytics_kpi_dirty AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON lead_analytics
    FOR EACH STATEMENT EXECUTE FUNCTION notify_kpi_dirty();
CREATE TRIGGER users_kpi_dirty AFTER INSERT OR DELETE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION notify_kpi_dirty();
