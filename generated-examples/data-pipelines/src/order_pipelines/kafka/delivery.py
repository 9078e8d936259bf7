"""The consumer runner for this service's delivery guarantee: at-least-once."""

from aiokafka import AIOKafkaProducer

from ..events.serde import EventSerde
from ..patterns.cdc.serde import WithChanges
from ..processed import InMemoryProcessedEvents, ProcessedEvents, SqliteProcessedEvents
from ..processed_postgres import PostgresProcessedEvents
from ..settings import Settings
from .commit_after_processing import CommitAfterProcessing
from .consumer import ConsumerRunner, Handler, create_consumer


def create_runner(
    settings: Settings, serde: EventSerde, handler: Handler, producer: AIOKafkaProducer
) -> ConsumerRunner:
    serde = WithChanges(serde)  # the change topic's JSON beside the spec's Avro
    return CommitAfterProcessing(
        create_consumer(settings), serde, handler, producer, processed_events(settings), settings
    )


def processed_events(settings: Settings) -> ProcessedEvents:
    """The shared PostgreSQL store when configured; else one private to this process (development)."""
    if settings.processed_events_url:
        return PostgresProcessedEvents(
            settings.processed_events_url,
            settings.kafka_consumer_group,
            settings.processed_events_retention_hours,
            settings.processed_events_pool_size,
        )
    if settings.processed_events_path:
        return SqliteProcessedEvents(settings.processed_events_path)
    return InMemoryProcessedEvents()
