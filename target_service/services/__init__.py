"""Domain logic between thin routers and the SQL in db/queries."""
