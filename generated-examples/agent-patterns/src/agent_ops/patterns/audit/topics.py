"""The audit log's own topics, as its KafkaTopics declare them. Generated from the spec (spec.yml)."""

from ...kafka.admin import DeclaredTopic

TOPICS: tuple[DeclaredTopic, ...] = (
    # Append-only: never compacted, kept forever.
    DeclaredTopic(
        "agent.tasks.audit",
        3,
        {"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "-1"},
    ),
    # What the service hands the sealer; sealed entries live on in the audit log itself.
    DeclaredTopic("agent.tasks.audit.intake", 3, {"retention.ms": "604800000"}),
    # Where intake records that are not audit entries wait for a human.
    DeclaredTopic("agent.tasks.audit.intake.dlq", 3, {"retention.ms": "2592000000"}),
)
