-- profile: all
-- Who may no longer authenticate as whom: the auth cache of every service
-- process remembers which user an API key's hash belongs to (5 minutes). When
-- a user's key hash, name or id changes, or the user is removed, a NOTIFY on
-- `api_key_changed` (payload: the old user id; `*` after TRUNCATE, meaning
-- everyone) makes every listening process forget that user's keys, so an old
-- key is refused from the next request on, and the new one is looked up.
--
-- Row-level: users change rarely and one NOTIFY per changed user is what the
-- listener wants (PostgreSQL folds identical ones within a transaction). The
-- payload is an id, never a key or its hash. Every profile gets it: a trigger
-- on a table that rarely changes costs nothing, and the auth cache can be
-- switched on alone (TARGET_TOGGLES__AUTH_CACHE).

CREATE FUNCTION notify_api_key_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM pg_notify('api_key_changed', '*');
    ELSE
        PERFORM pg_notify('api_key_changed', OLD.id::text);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER users_api_key_changed
    AFTER UPDATE OF api_key_hash, name, id ON users
    FOR EACH ROW
    WHEN (OLD.api_key_hash IS DISTINCT FROM NEW.api_key_hash
          OR OLD.name IS DISTINCT FROM NEW.name
          OR OLD.id IS DISTINCT FROM NEW.id)
    EXECUTE FUNCTION notify_api_key_changed();

CREATE TRIGGER users_api_key_deleted
    AFTER DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION notify_api_key_changed();

CREATE TRIGGER users_api_key_truncated
    AFTER TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION notify_api_key_changed();
