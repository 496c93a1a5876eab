"""The activity feed (keyset pagination) and the call write path."""

ACTIVITY_FIRST_PAGE = """
SELECT c.id, c.agent_id, a.name AS agent_name, c.lead_id, c.status, c.direction,
       c.duration_seconds, c.cost, c.created_at
FROM calls c JOIN agents a ON a.id = c.agent_id
WHERE c.user_id = $1
ORDER BY c.created_at DESC, c.id DESC
LIMIT $2
"""

# keyset: strictly older than the (created_at, id) of the previous page's last row
ACTIVITY_PAGE_BEFORE = """
SELECT c.id, c.agent_id, a.name AS agent_name, c.lead_id, c.status, c.direction,
       c.duration_seconds, c.cost, c.created_at
FROM calls c JOIN agents a ON a.id = c.agent_id
WHERE c.user_id = $1 AND (c.created_at, c.id) < ($3, $4)
ORDER BY c.created_at DESC, c.id DESC
LIMIT $2
"""

AGENT_OWNED = "SELECT id FROM agents WHERE id = $2 AND user_id = $1"
LEAD_OWNED = "SELECT id FROM leads WHERE id = $2 AND user_id = $1"

INSERT_CALL = """
INSERT INTO calls (user_id, agent_id, lead_id, status, direction, duration_seconds, cost)
VALUES ($1, $2, $3, $4, $5, $6, $7)
RETURNING id, created_at
"""

# keep the hourly rollup exact: the optimized reads depend on it
UPSERT_AGENT_ANALYTICS = """
INSERT INTO agent_analytics AS aa (user_id, agent_id, date, hour, calls_count, completed_count,
                                   total_duration_seconds, total_cost)
VALUES ($1, $2, ($3::timestamptz AT TIME ZONE 'UTC')::date,
        extract(hour FROM $3::timestamptz AT TIME ZONE 'UTC')::smallint,
        1, $4, $5, $6)
ON CONFLICT (agent_id, date, hour) DO UPDATE SET
    calls_count            = aa.calls_count + 1,
    completed_count        = aa.completed_count + EXCLUDED.completed_count,
    total_duration_seconds = aa.total_duration_seconds + EXCLUDED.total_duration_seconds,
    total_cost             = aa.total_cost + EXCLUDED.total_cost
"""

TOUCH_LEAD_ANALYTICS = """
UPDATE lead_analytics
SET calls_count = calls_count + 1,
    last_call_at = greatest(last_call_at, $3),
    updated_at = now()
WHERE lead_id = $2 AND user_id = $1
"""
