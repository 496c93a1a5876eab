"""The processes a run measures: PostgreSQL (embedded or external), the
ElevenLabs stub and the target service, started and always stopped."""
