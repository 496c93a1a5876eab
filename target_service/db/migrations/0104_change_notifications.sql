-- profile: optimized
-- Who changed: one NOTIFY per distinct user per statement, on the channel
-- `user_data_changed`, payload `<table>:<user_id>` (keys, never data). The
-- caches of every service process evict that user's entries; the KPI
-- refresher collects the user ids and, after REFRESH, tells the caches which
-- users' KPIs are now visible (`kpi_refreshed`).
--
-- Statement-level triggers with transition tables: a COPY or a bulk UPDATE of
-- 100k rows costs one trigger call and one NOTIFY per user, not per row.
-- Transition tables need one trigger per event, hence three per table.
-- PostgreSQL folds identical notifications within a transaction, so a call
-- insert that also touches the rollups still notifies each user once per table.

CREATE FUNCTION notify_user_data_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    uid bigint;
BEGIN
    FOR uid IN SELECT DISTINCT user_id FROM changed_rows LOOP
        PERFORM pg_notify('user_data_changed', TG_TABLE_NAME || ':' || uid);
    END LOOP;
    RETURN NULL;
END
$$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['calls', 'leads', 'lead_analytics', 'agent_analytics', 'agents'] LOOP
        EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON %I REFERENCING NEW TABLE AS changed_rows '
                       'FOR EACH STATEMENT EXECUTE FUNCTION notify_user_data_changed()',
                       t || '_changed_ins', t);
        EXECUTE format('CREATE TRIGGER %I AFTER UPDATE ON %I REFERENCING NEW TABLE AS changed_rows '
                       'FOR EACH STATEMENT EXECUTE FUNCTION notify_user_data_changed()',
                       t || '_changed_upd', t);
        EXECUTE format('CREATE TRIGGER %I AFTER DELETE ON %I REFERENCING OLD TABLE AS changed_rows '
                       'FOR EACH STATEMENT EXECUTE FUNCTION notify_user_data_changed()',
                       t || '_changed_del', t);
    END LOOP;
END
$$;
