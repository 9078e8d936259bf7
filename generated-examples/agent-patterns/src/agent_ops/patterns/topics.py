"""The topics the chosen patterns add to the spec's: the one list development start-up creates and the Strimzi
KafkaTopics declare. Generated from the spec (spec.yml); `copier update` regenerates it."""

import logging
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from ..kafka.connection import connection_options
from ..settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PatternTopic:
    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)


PATTERN_TOPICS: tuple[PatternTopic, ...] = (
    # Where the email channel's undeliverable events wait for a human.
    PatternTopic("agent.tasks.email.dlq", 6, {"retention.ms": "2592000000"}),
    # Where the sms channel's undeliverable events wait for a human.
    PatternTopic("agent.tasks.sms.dlq", 6, {"retention.ms": "2592000000"}),
    # Where the push channel's undeliverable events wait for a human.
    PatternTopic("agent.tasks.push.dlq", 6, {"retention.ms": "2592000000"}),
    # Append-only: never compacted, kept forever.
    PatternTopic(
        "agent.tasks.audit",
        3,
        {"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "-1"},
    ),
    # What the service hands the sealer; sealed entries live on in the audit log itself.
    PatternTopic("agent.tasks.audit.intake", 3, {"retention.ms": "604800000"}),
    # Where intake records that are not audit entries wait for a human.
    PatternTopic("agent.tasks.audit.intake.dlq", 3, {"retention.ms": "2592000000"}),
    # The task_run saga's steps to run; a command is done once its outcome is in the state topic.
    PatternTopic("saga.task-run.commands", 3, {"retention.ms": "604800000"}),
    # Where records on the commands topic that are not commands wait for a human.
    PatternTopic("saga.task-run.commands.dlq", 3, {"retention.ms": "2592000000"}),
    # Every saga's latest state, keyed by saga id: compacted, never expired, so the orchestrator can rebuild it.
    PatternTopic(
        "saga.task-run.state",
        3,
        {"cleanup.policy": "compact", "min.compaction.lag.ms": "3600000"},
    ),
)


async def ensure_pattern_topics(settings: Settings) -> list[str]:
    """Create whichever of the patterns' topics do not exist yet (development); return the names created."""
    admin = AIOKafkaAdminClient(**connection_options(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(t.name, t.partitions, settings.kafka_topic_replication_factor, topic_configs=t.config)
            for t in PATTERN_TOPICS
            if t.name not in existing
        ]
        if wanted:
            await admin.create_topics(wanted)
            log.info("created topics %s", ", ".join(t.name for t in wanted))
        return [t.name for t in wanted]
    finally:
        await admin.close()
