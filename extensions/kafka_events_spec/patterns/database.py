"""What the outbox and CDC patterns share: the service's PostgreSQL tables, and how a Debezium source captures one."""

from __future__ import annotations

from ..base import words


def _table_of(topic: str) -> str:
    """The domain table of an outbox topic: the topic's name in snake_case."""
    return "_".join(words(topic)).lower()


# Tables the service makes itself (the outbox, the migrations it applied, the processed event ids).
RESERVED_TABLES = ("outbox", "schema_migrations", "processed_events")


POSTGRES_CONNECTOR = "io.debezium.connector.postgresql.PostgresConnector"


HEARTBEAT_TABLE = "debezium_heartbeat"
"""Made by the migration 0003_debezium_heartbeat.sql: one row, which each connector's heartbeat updates."""


HEARTBEAT_PREFIX = "debezium-heartbeat"


def _capture(name: str, table: str) -> dict[str, str]:
    """What every Debezium source of the service says: pgoutput (built into PostgreSQL), its own replication slot and
    a publication of its one table, and records and source offsets written in one Kafka transaction (KIP-618).

    `migrate` (the migration hook Job) makes the publication and the slot before the service takes traffic, so that
    the WAL keeps every row written before the connector first starts: the connector creates neither. A heartbeat
    every 10 s updates the row of HEARTBEAT_TABLE (in every publication, in no table.include.list), so the connector
    confirms the slot's position though its own table is quiet and the slot holds back no WAL of the database."""
    return {
        "connector.class": POSTGRES_CONNECTOR,
        "tasks.max": "1",
        "plugin.name": "pgoutput",
        "topic.prefix": name.replace("_", "-"),
        "table.include.list": f"public.{table}",
        "slot.name": name,
        "publication.name": name,
        "publication.autocreate.mode": "disabled",
        "heartbeat.interval.ms": "10000",
        "topic.heartbeat.prefix": HEARTBEAT_PREFIX,
        "heartbeat.action.query": f"UPDATE {HEARTBEAT_TABLE} SET beat = now()",
        "tombstones.on.delete": "false",
        "exactly.once.support": "required",
        # No __debezium.context.* headers on the records: consumers see the service's headers only.
        "extended.headers.enabled": "false",
        "header.converter": "org.apache.kafka.connect.storage.SimpleHeaderConverter",
    }
