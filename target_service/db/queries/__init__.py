"""All SQL of the service, one module per domain.

Each module holds the optimized statement and, where the naive profile does
something different, the naive one beside it, so the "before" and "after" of
every optimization can be read side by side. Statements take the caller's
`user_id` as `$1` wherever they touch tenant data: scoping is never optional.
"""
