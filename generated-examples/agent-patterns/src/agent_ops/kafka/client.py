"""The Kafka client this service runs on: librdkafka, through confluent-kafka.
The rest of the service reaches it through the port (port.py) and the names below, never through the client
library itself."""

from .confluent_client import (
    ERRORS,
    MAX_REQUEST_SIZE,
    broker_answers,
    committed_reader,
    create_consumer,
    fenced,
    partitions_of,
    plain_producer,
    publish_producer,
    record_size,
    transactional_producer,
)
from .confluent_client import ProcessProducers as TransactionalProducers
from .confluent_producer import ConfluentProducer

SENDERS = (ConfluentProducer,)
"""The classes whose `send` every record of the service goes through: tracing wraps it (observability.tracing)."""

__all__ = [
    "ERRORS",
    "MAX_REQUEST_SIZE",
    "SENDERS",
    "TransactionalProducers",
    "broker_answers",
    "committed_reader",
    "create_consumer",
    "fenced",
    "partitions_of",
    "plain_producer",
    "publish_producer",
    "record_size",
    "transactional_producer",
]
