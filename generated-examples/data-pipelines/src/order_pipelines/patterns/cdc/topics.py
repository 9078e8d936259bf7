"""Change data capture's own topics, as its KafkaTopics declare them. Generated from the spec (spec.yml)."""

from ...kafka.admin import DeclaredTopic

TOPICS: tuple[DeclaredTopic, ...] = (
    # The changes of the customers table, written by Debezium, and those the handler could not take.
    DeclaredTopic("customers.changes", 3),
    DeclaredTopic("customers.changes.dlq", 3),
)
