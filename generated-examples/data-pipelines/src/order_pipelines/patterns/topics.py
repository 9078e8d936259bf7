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
    # The changes of the customers table, written by Debezium, and those the handler could not take.
    PatternTopic("customers.changes", 3),
    PatternTopic("customers.changes.dlq", 3),
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
