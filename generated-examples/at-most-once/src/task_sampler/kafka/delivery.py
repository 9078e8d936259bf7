"""The consumer runner for this service's delivery guarantee: at-most-once."""

from aiokafka import AIOKafkaProducer

from ..events.serde import EventSerde
from ..settings import Settings
from .commit_before_processing import CommitBeforeProcessing
from .consumer import ConsumerRunner, Handler, create_consumer


def create_runner(
    settings: Settings, serde: EventSerde, handler: Handler, producer: AIOKafkaProducer
) -> ConsumerRunner:
    return CommitBeforeProcessing(create_consumer(settings), serde, handler, producer, settings)
