"""The consumer runner for this service's delivery guarantee: at-least-once."""

from ..events.serde import EventSerde
from ..processed import InMemoryProcessedEvents, ProcessedEvents, SqliteProcessedEvents
from ..processed_postgres import PostgresProcessedEvents
from ..settings import Settings
from .client import create_consumer
from .commit_after_processing import CommitAfterProcessing
from .consumer import ConsumerRunner, Handler
from .hooks import Hooks
from .port import Producer


def create_runner(
    settings: Settings, serde: EventSerde, handler: Handler, producer: Producer, hooks: Hooks
) -> ConsumerRunner:
    """The runner; what it writes for a record goes with what the patterns' `hooks` write."""
    return CommitAfterProcessing(
        create_consumer(settings), serde, handler, producer, processed_events(settings), settings, hooks
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
