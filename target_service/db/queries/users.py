"""Authentication lookups."""

USER_BY_KEY_HASH = "SELECT id, name FROM users WHERE api_key_hash = $1"
