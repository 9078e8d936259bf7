"""The fan-out's own topics, as its KafkaTopics declare them. Generated from the spec (spec.yml)."""

from ...kafka.admin import DeclaredTopic

TOPICS: tuple[DeclaredTopic, ...] = (
    # Where the email channel's undeliverable events wait for a human.
    DeclaredTopic("agent.tasks.email.dlq", 6, {"retention.ms": "2592000000"}),
    # Where the sms channel's undeliverable events wait for a human.
    DeclaredTopic("agent.tasks.sms.dlq", 6, {"retention.ms": "2592000000"}),
    # Where the push channel's undeliverable events wait for a human.
    DeclaredTopic("agent.tasks.push.dlq", 6, {"retention.ms": "2592000000"}),
)
