"""The database plug-in's tests (PostgreSQL and Kafka Connect, shared by the outbox and change data capture), and
what the shared tests need to know about it."""
