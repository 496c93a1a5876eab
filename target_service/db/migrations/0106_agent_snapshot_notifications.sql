-- profile: optimized
-- A snapshot write is not a change of the user's dashboard. The service stores
-- each agent's last ElevenLabs configuration (`config_snapshot`,
-- `snapshot_updated_at`) after a live fetch finds it missing, old or different:
-- hundreds of UPDATEs an hour under load. Through 0104's generic trigger each
-- one said `agents:<user>`, and every process evicted everything of that user
-- (overview, analytics, agent stats) for data none of them shows.
--
-- This trigger replaces 0104's UPDATE trigger on agents. A row whose columns
-- other than the snapshot's are unchanged says `agents.snapshot:<user>`, on
-- which the caches drop only that user's agent list (it holds the stored
-- snapshot the fallback and the next write decision read); any other change
-- says `agents:<user>` as before. An agent moved to another user, or given a
-- new id, notifies the old owner too (0104's UPDATE trigger saw only the new rows).
--
-- Statement-level with both transition tables, one NOTIFY per user and kind;
-- comparing whole rows as jsonb minus the snapshot's keys keeps the trigger
-- right when columns are added.

CREATE FUNCTION notify_agents_updated() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    change record;
BEGIN
    FOR change IN
        SELECT uid, bool_and(snapshot_only) AS snapshot_only
        FROM (
            SELECT n.user_id AS uid,
                   (to_jsonb(n) - 'config_snapshot' - 'snapshot_updated_at')
                       = (to_jsonb(o) - 'config_snapshot' - 'snapshot_updated_at')
                       AS snapshot_only
            FROM new_rows n JOIN old_rows o ON o.id = n.id
            UNION ALL
            SELECT o.user_id, false
            FROM new_rows n JOIN old_rows o ON o.id = n.id
            WHERE o.user_id <> n.user_id
            UNION ALL  -- a changed id: the row cannot be paired, so it is a change
            SELECT n.user_id, false FROM new_rows n
            WHERE NOT EXISTS (SELECT 1 FROM old_rows o WHERE o.id = n.id)
            UNION ALL
            SELECT o.user_id, false FROM old_rows o
            WHERE NOT EXISTS (SELECT 1 FROM new_rows n WHERE n.id = o.id)
        ) AS changed
        GROUP BY uid
    LOOP
        PERFORM pg_notify('user_data_changed',
                          CASE WHEN change.snapshot_only THEN 'agents.snapshot:' ELSE 'agents:' END
                          || change.uid);
    END LOOP;
    RETURN NULL;
END
$$;

DROP TRIGGER agents_changed_upd ON agents;

CREATE TRIGGER agents_changed_upd AFTER UPDATE ON agents
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION notify_agents_updated();
