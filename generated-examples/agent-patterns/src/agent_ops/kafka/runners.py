"""The consumer runner for this service's delivery guarantee: exactly-once."""

from aiokafka import AIOKafkaProducer

from ..events.serde import EventSerde
from ..settings import Settings
from .consumer import ConsumerRunner, Handler, create_consumer
from .hooks import Hooks
from .transactions import TransactionalProcessor


def create_runner(
    settings: Settings, serde: EventSerde, handler: Handler, producer: AIOKafkaProducer, hooks: Hooks
) -> ConsumerRunner:
    """The runner; what it writes for a record goes with what the patterns' `hooks` write."""
    # Emitted events and dead letters go through the runner's own transactional producers, not `producer`.
    return TransactionalProcessor(create_consumer(settings), serde, handler, settings, hooks)
