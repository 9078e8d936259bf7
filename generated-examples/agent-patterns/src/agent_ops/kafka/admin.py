"""Creating the service's topics, their dead-letter topics and the plug-ins' topics where they are missing
(development only: in a cluster, Strimzi's KafkaTopics declare them), and the admin client the service's tools
read the cluster with: aiokafka (the port: admin_port.py)."""

import logging
from collections.abc import Iterable

from ..events.catalog import TOPICS
from ..settings import Settings
from .admin_port import DeclaredTopic
from .aiokafka_admin import Admin

__all__ = ["Admin", "DeclaredTopic", "ensure_topics", "topic_partitions"]

log = logging.getLogger(__name__)


async def ensure_topics(settings: Settings, declared: Iterable[DeclaredTopic] = ()) -> list[str]:
    """Create whichever of the service's topics and of `declared` do not exist yet; return the names created."""
    admin = Admin(settings)
    await admin.start()
    try:
        existing = await admin.topics()
        own = [DeclaredTopic(name, topic.partitions) for topic in TOPICS for name in (topic.name, topic.dead_letter)]
        wanted = [
            topic for topic in {topic.name: topic for topic in (*own, *declared)}.values() if topic.name not in existing
        ]
        if wanted:
            await admin.create_topics(wanted, settings.kafka_topic_replication_factor)
            log.info("created topics %s", ", ".join(t.name for t in wanted))
        return [t.name for t in wanted]
    finally:
        await admin.close()


async def topic_partitions(settings: Settings, topic: str) -> list[int]:
    """The partitions of `topic`; none while it does not exist."""
    admin = Admin(settings)
    await admin.start()
    try:
        return [p.partition for p in (await admin.partitions([topic])).get(topic, [])]
    finally:
        await admin.close()
