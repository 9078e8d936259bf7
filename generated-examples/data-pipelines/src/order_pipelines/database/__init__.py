"""The service's PostgreSQL: the tables the spec generates (migrations/), and the Debezium connectors that
publish the outbox and capture customers (connectors.py)."""
