"""Agents page SQL. Stats reuse the overview's statements (dashboard.py)."""

AGENT_BY_ID = """
SELECT id, name, status, elevenlabs_agent_id, config_snapshot, snapshot_updated_at, created_at
FROM agents WHERE id = $2 AND user_id = $1
"""

AGENTS_OF_USER = """
SELECT id, name, status, elevenlabs_agent_id, config_snapshot, snapshot_updated_at, created_at
FROM agents WHERE user_id = $1 ORDER BY id
"""

SAVE_SNAPSHOT = """
UPDATE agents SET config_snapshot = $2::jsonb, snapshot_updated_at = now()
WHERE elevenlabs_agent_id = $1
"""

# all of a user's agents' 30-day stats in one pass over the rollup ($2 window start date)
AGENT_STATS_BATCH = """
SELECT agent_id, sum(calls_count) AS calls, sum(completed_count) AS completed,
       sum(total_duration_seconds) AS duration, sum(total_cost) AS cost
FROM agent_analytics
WHERE user_id = $1 AND date >= $2
GROUP BY agent_id
"""
