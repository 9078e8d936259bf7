"""The consumer runner for this service's delivery guarantee: exactly-once."""

from ..events.serde import EventSerde
from ..settings import Settings
from .client import TransactionalProducers, create_consumer
from .consumer import ConsumerRunner, Handler
from .hooks import Hooks
from .port import Producer
from .transactions import TransactionalProcessor


def create_runner(
    settings: Settings, serde: EventSerde, handler: Handler, producer: Producer, hooks: Hooks
) -> ConsumerRunner:
    """The runner; what it writes for a record goes with what the patterns' `hooks` write."""
    # Emitted events and dead letters go through the runner's own transactional producers, not `producer`.
    return TransactionalProcessor(
        create_consumer(settings), serde, handler, settings, TransactionalProducers(settings), hooks
    )
