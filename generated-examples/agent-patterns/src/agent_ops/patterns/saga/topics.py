"""The saga's own topics, as its KafkaTopics declare them. Generated from the spec (spec.yml)."""

from ...kafka.admin import DeclaredTopic

TOPICS: tuple[DeclaredTopic, ...] = (
    # The task_run saga's steps to run; a command is done once its outcome is in the state topic.
    DeclaredTopic("saga.task-run.commands", 3, {"retention.ms": "604800000"}),
    # Where records on the commands topic that are not commands wait for a human.
    DeclaredTopic("saga.task-run.commands.dlq", 3, {"retention.ms": "2592000000"}),
    # Every saga's latest state, keyed by saga id: compacted, never expired, so the orchestrator can rebuild it.
    DeclaredTopic(
        "saga.task-run.state",
        3,
        {"cleanup.policy": "compact", "min.compaction.lag.ms": "3600000"},
    ),
)
