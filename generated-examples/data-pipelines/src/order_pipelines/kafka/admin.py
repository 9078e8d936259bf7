"""Creating the service's topics and their dead-letter topics where they are missing (development only)."""

import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from ..events.catalog import TOPICS
from ..settings import Settings
from .connection import connection_options

log = logging.getLogger(__name__)


async def ensure_topics(settings: Settings) -> list[str]:
    """Create whichever of the service's topics do not exist yet; return the names created."""
    admin = AIOKafkaAdminClient(**connection_options(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(name, topic.partitions, settings.kafka_topic_replication_factor)
            for topic in TOPICS
            for name in (topic.name, topic.dead_letter)
            if name not in existing
        ]
        if wanted:
            await admin.create_topics(wanted)
            log.info("created topics %s", ", ".join(t.name for t in wanted))
        return [t.name for t in wanted]
    finally:
        await admin.close()
