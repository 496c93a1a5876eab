"""Overview and analytics SQL, optimized and naive side by side.

Windows are half-open UTC ranges `[start, end)`; KPIs use the 30 calendar-day
window that `user_kpi_summary` also uses, so both profiles agree exactly.
"""

# --- overview: KPIs -------------------------------------------------------

KPI_FROM_VIEW = """
SELECT window_start, total_calls, completed_calls, total_duration_seconds, total_cost,
       active_agents, last_call_at, new_leads, qualified_leads, scored_leads, score_sum,
       refreshed_at
FROM user_kpi_summary WHERE user_id = $1
"""

# naive: aggregate the raw tables on every request
NAIVE_CALL_KPIS = """
SELECT count(*)                                      AS total_calls,
       count(*) FILTER (WHERE status = 'completed')  AS completed_calls,
       coalesce(sum(duration_seconds), 0)            AS total_duration_seconds,
       coalesce(sum(cost), 0)                        AS total_cost,
       count(DISTINCT agent_id)                      AS active_agents,
       max(created_at)                               AS last_call_at
FROM calls WHERE user_id = $1 AND created_at >= $2
"""

NAIVE_LEAD_KPIS = """
SELECT count(*)                                  AS new_leads,
       count(*) FILTER (WHERE la.score >= 70)    AS qualified_leads,
       count(la.score)                           AS scored_leads,
       coalesce(sum(la.score), 0)                AS score_sum
FROM leads l LEFT JOIN lead_analytics la ON la.lead_id = l.id
WHERE l.user_id = $1 AND l.created_at >= $2
"""

# --- overview: agents with their 30-day stats --------------------------------

# optimized: one grouped query over the hourly rollup
AGENTS_WITH_STATS = """
SELECT a.id, a.name, a.status, a.elevenlabs_agent_id,
       coalesce(s.calls, 0)     AS calls,
       coalesce(s.completed, 0) AS completed,
       coalesce(s.duration, 0)  AS duration,
       coalesce(s.cost, 0)      AS cost
FROM agents a
LEFT JOIN (
    SELECT agent_id, sum(calls_count) AS calls, sum(completed_count) AS completed,
           sum(total_duration_seconds) AS duration, sum(total_cost) AS cost
    FROM agent_analytics
    WHERE user_id = $1 AND date >= $2
    GROUP BY agent_id
) s ON s.agent_id = a.id
WHERE a.user_id = $1
ORDER BY a.id
"""

# naive: the agents, then one aggregate over raw calls per agent (N+1)
NAIVE_AGENTS = """
SELECT id, name, status, elevenlabs_agent_id FROM agents WHERE user_id = $1 ORDER BY id
"""

NAIVE_AGENT_STATS = """
SELECT count(*)                                     AS calls,
       count(*) FILTER (WHERE status = 'completed') AS completed,
       coalesce(sum(duration_seconds), 0)           AS duration,
       coalesce(sum(cost), 0)                       AS cost
FROM calls WHERE agent_id = $1 AND created_at >= $2
"""

# --- overview: recent activity -----------------------------------------------

# Served by the partial index calls_recent_* (user_id, created_at, id) when the
# plan is custom: $2 (the window start) is later than the index cutoff.
RECENT_ACTIVITY = """
SELECT c.id, c.agent_id, a.name AS agent_name, c.lead_id, c.status, c.direction,
       c.duration_seconds, c.cost, c.created_at
FROM calls c JOIN agents a ON a.id = c.agent_id
WHERE c.user_id = $1 AND c.created_at >= $2
ORDER BY c.created_at DESC, c.id DESC
LIMIT $3
"""

# --- analytics charts ($1 user, $2 start, $3 end, $4 granularity) ---------------

LEADS_OVER_TIME = """
SELECT date_trunc($4::text, l.created_at AT TIME ZONE 'UTC')::date AS bucket, count(*) AS leads
FROM leads l
WHERE l.user_id = $1 AND l.created_at >= $2 AND l.created_at < $3
GROUP BY 1 ORDER BY 1
"""

# optimized: one CASE-bucketed pass
LEAD_QUALITY = """
SELECT CASE WHEN la.score >= 80 THEN 'hot'
            WHEN la.score >= 50 THEN 'warm'
            WHEN la.score >= 20 THEN 'cold'
            ELSE 'poor' END AS bucket,
       count(*) AS leads
FROM lead_analytics la JOIN leads l ON l.id = la.lead_id
WHERE la.user_id = $1 AND l.user_id = $1 AND l.created_at >= $2 AND l.created_at < $3
GROUP BY 1
"""

# naive: one count per bucket ($4, $5: score bounds, inclusive)
NAIVE_LEAD_QUALITY_BUCKET = """
SELECT count(*) FROM lead_analytics la JOIN leads l ON l.id = la.lead_id
WHERE la.user_id = $1 AND l.user_id = $1 AND l.created_at >= $2 AND l.created_at < $3
  AND la.score BETWEEN $4 AND $5
"""

LEAD_BUCKETS = (("hot", 80, 100), ("warm", 50, 79), ("cold", 20, 49), ("poor", 0, 19))

CALLS_BY_STATUS = """
SELECT status, count(*) AS calls
FROM calls WHERE user_id = $1 AND created_at >= $2 AND created_at < $3
GROUP BY status ORDER BY status
"""

# optimized: the hourly rollup ($2, $3 as dates, end exclusive)
HOURLY_LOAD_ROLLUP = """
SELECT agent_id, hour, sum(calls_count)::bigint AS calls
FROM agent_analytics
WHERE user_id = $1 AND date >= $2 AND date < $3
GROUP BY agent_id, hour ORDER BY agent_id, hour
"""

# naive: bucket raw calls by hour
NAIVE_HOURLY_LOAD = """
SELECT agent_id, extract(hour FROM created_at AT TIME ZONE 'UTC')::int AS hour, count(*) AS calls
FROM calls
WHERE user_id = $1 AND created_at >= $2 AND created_at < $3
GROUP BY 1, 2 ORDER BY 1, 2
"""

# --- cache warming: the most active users first ---------------------------------

TOP_USERS = """
SELECT user_id FROM user_kpi_summary ORDER BY total_calls DESC, user_id LIMIT $1
"""
