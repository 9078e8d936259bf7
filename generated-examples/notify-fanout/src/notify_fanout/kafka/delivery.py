"""The consumer runner for this service's delivery guarantee: at-least-once."""

from aiokafka import AIOKafkaProducer

from ..events.serde import EventSerde
from ..processed import InMemoryProcessedEvents, ProcessedEvents, SqliteProcessedEvents
from ..settings import Settings
from .commit_after_processing import CommitAfterProcessing, skipping_processed
from .consumer import ConsumerRunner, Handler, create_consumer


def create_runner(
    settings: Settings, serde: EventSerde, handler: Handler, producer: AIOKafkaProducer
) -> ConsumerRunner:
    processed: ProcessedEvents = (
        SqliteProcessedEvents(settings.processed_events_path)
        if settings.processed_events_path
        else InMemoryProcessedEvents()
    )
    return CommitAfterProcessing(
        create_consumer(settings), serde, skipping_processed(handler, processed), producer, processed, settings
    )
