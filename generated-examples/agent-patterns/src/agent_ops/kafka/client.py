"""The Kafka client this service runs on: aiokafka.
The rest of the service reaches it through the port (port.py) and the names below, never through the client
library itself."""

from .aiokafka_client import (
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
from .aiokafka_client import PartitionProducers as TransactionalProducers

__all__ = [
    "ERRORS",
    "MAX_REQUEST_SIZE",
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
