-- profile: optimized
-- Composite indexes shaped after the dashboard's read queries. Each one names
-- the query it serves; EXPLAIN tests in tests/target_service check they are used.

-- calls by user over a date range, filtered or grouped by status (analytics
-- "calls by status"; keyset pagination of the activity feed beyond 30 days).
CREATE INDEX calls_user_created_status_idx ON calls (user_id, created_at, status);

-- the hourly rollup read by user and date range (agent stats, hourly load).
CREATE INDEX agent_analytics_user_date_hour_idx ON agent_analytics (user_id, date, hour);

-- lead quality buckets: score-based filtering per user.
CREATE INDEX lead_analytics_user_score_idx ON lead_analytics (user_id, score);

-- leads over time: new leads per user over a date range.
CREATE INDEX leads_user_created_idx ON leads (user_id, created_at);

-- the agents of a user (overview, agents page).
CREATE INDEX agents_user_idx ON agents (user_id);
