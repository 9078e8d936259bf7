"""Creating the service's topics, their dead-letter topics and the plug-ins' topics where they are missing
(development only: in a cluster, Strimzi's KafkaTopics declare them)."""

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from ..events.catalog import TOPICS
from ..settings import Settings
from .connection import connection_options

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeclaredTopic:
    """A topic a plug-in keeps, with the partitions and configs its KafkaTopic declares."""

    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)


async def ensure_topics(settings: Settings, declared: Iterable[DeclaredTopic] = ()) -> list[str]:
    """Create whichever of the service's topics and of `declared` do not exist yet; return the names created."""
    admin = AIOKafkaAdminClient(**connection_options(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        own = [DeclaredTopic(name, topic.partitions) for topic in TOPICS for name in (topic.name, topic.dead_letter)]
        wanted = [
            NewTopic(topic.name, topic.partitions, settings.kafka_topic_replication_factor, topic_configs=topic.config)
            for topic in {topic.name: topic for topic in (*own, *declared)}.values()
            if topic.name not in existing
        ]
        if wanted:
            await admin.create_topics(wanted)
            log.info("created topics %s", ", ".join(t.name for t in wanted))
        return [t.name for t in wanted]
    finally:
        await admin.close()
