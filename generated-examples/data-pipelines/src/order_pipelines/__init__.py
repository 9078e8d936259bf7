"""Takes orders into PostgreSQL, publishes their events through an outbox and follows customer changes."""
