"""The port (port.py) on librdkafka, through confluent-kafka: its consumer and producers (confluent_consumer.py,
confluent_producer.py) made with the service's settings, its errors (confluent_errors.py), and how exactly-once
gets its producers here (one per process: KIP-447 fences a producer by its consumer group's generation, so the
process's transactions need no producer per partition)."""

import asyncio
import contextlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from confluent_kafka import KafkaError, KafkaException

from ..settings import Settings
from .confluent_consumer import ConfluentConsumer
from .confluent_errors import ERRORS, raised
from .confluent_producer import ConfluentProducer, ConfluentTransactionalProducer, retrieve_exceptions
from .connection import connection_options
from .port import Consumer, Delivery, Partition, Producer, TransactionalProducer

__all__ = [
    "ERRORS",
    "MAX_REQUEST_SIZE",
    "ProcessProducers",
    "a_broker_answers",
    "broker_answers",
    "committed_reader",
    "create_consumer",
    "fenced",
    "partitions_of",
    "plain_producer",
    "record_size",
    "transactional_producer",
]

MAX_REQUEST_SIZE = 1_000_000
"""The largest record the service's producers send: librdkafka's default `message.max.bytes` (none of them changes
it), which it checks before sending a record."""

RECORD_OVERHEAD = 36
"""What librdkafka adds to a record's key, value and headers when it checks its size: the record's framing at its
largest (its length, attributes, timestamp and offset deltas, key and value lengths, header count)."""

DEFAULT_MAX_RECORDS = 500
"""Records a poll hands over at most when its caller does not say (Kafka's `max.poll.records` default)."""


def _varint_size(value: int) -> int:
    """Bytes of a non-negative length as Kafka writes it (a zigzag varint)."""
    zigzag = value << 1
    return max(1, (zigzag.bit_length() + 6) // 7)


def record_size(key: bytes | None, value: bytes | None, headers: Sequence[tuple[str, bytes | None]]) -> int:
    """The size librdkafka checks against `message.max.bytes` before sending a record."""
    size = RECORD_OVERHEAD + len(key or b"") + len(value or b"")
    for name, header in headers:
        name_size, value_size = len(name.encode()), len(header or b"")
        size += name_size + value_size + _varint_size(name_size) + _varint_size(value_size)
    return size


def create_consumer(settings: Settings, group_id: str | None = None, client_id: str | None = None) -> Consumer:
    """The consumer of a group (the service's own unless `group_id` says otherwise) as the runner uses it. Its
    session timeout and heartbeat are the broker's (KIP-848: `group.consumer.session.timeout.ms` and
    `group.consumer.heartbeat.interval.ms`), not the client's."""
    config = connection_options(settings) | {
        "group.id": group_id or settings.kafka_consumer_group,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        # Records of aborted (and still open) transactions are never handed to the handlers.
        "isolation.level": "read_committed",
        # librdkafka leaves the group when it is not polled for this long (the rebalance timeout too, which the
        # revoke listener's wait for in-flight handlers stays within); the runner polls while handlers run.
        "max.poll.interval.ms": settings.consumer_max_poll_interval_ms,
    }
    if client_id is not None:
        config["client.id"] = client_id
    return ConfluentConsumer(
        config,
        settings.consumer_max_records,
        settings.publish_timeout_seconds,
        settings.shutdown_timeout_seconds,
        connection=connection_options(settings),
    )


def committed_reader(
    settings: Settings,
    group_id: str | None = None,
    from_earliest: bool = False,
    client_id: str | None = None,
    max_records: int | None = None,
) -> Consumer:
    """A consumer that sees only committed records and commits only when told, with the client's defaults unless
    told otherwise: outside any group, for reading partitions it assigns itself, or in `group_id`. Reading a
    partition without a committed offset starts at its end, or at its beginning if `from_earliest`; a poll hands
    over up to `max_records`."""
    config = connection_options(settings) | {
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest" if from_earliest else "latest",
    }
    if group_id is not None:
        config["group.id"] = group_id
    if client_id is not None:
        config["client.id"] = client_id
    return ConfluentConsumer(
        config,
        max_records or DEFAULT_MAX_RECORDS,
        settings.publish_timeout_seconds,
        settings.shutdown_timeout_seconds,
    )


IDEMPOTENT: dict[str, Any] = {"acks": "all", "enable.idempotence": True}
"""Every in-sync replica stores a record before its ack, and no retry duplicates it."""


def plain_producer(settings: Settings, idempotent: bool = False, tuning: Mapping[str, Any] | None = None) -> Producer:
    """A producer of the client's defaults (waiting for every in-sync replica without duplicates, if
    `idempotent`), with librdkafka's `tuning` properties beyond the connection's, if any."""
    return ConfluentProducer(connection_options(settings) | (IDEMPOTENT if idempotent else {}) | dict(tuning or {}))


def publish_tuning(settings: Settings) -> dict[str, Any]:
    """librdkafka's properties of the publish path (beyond the connection's)."""
    return {
        # Every in-sync replica stores the event before the ack, and the producer id with sequence numbers lets
        # the broker drop a resent batch it already has: retries (until the delivery timeout) never duplicate.
        "acks": "all",
        "enable.idempotence": True,
        # librdkafka's batches (1 MB, 10,000 records) already hold what arrives within a linger, and it builds
        # them in C: only the linger is the publish path's own.
        "linger.ms": 5,
        "request.timeout.ms": int(settings.publish_timeout_seconds * 1000),
    }


def publish_producer(settings: Settings) -> Producer:
    """The publish path's producer (`producer.create_producer`): the guarantee's acknowledgement, batches of up to
    5 ms, each request bounded by PUBLISH_TIMEOUT_SECONDS."""
    return ConfluentProducer(connection_options(settings) | publish_tuning(settings))


async def partitions_of(producer: Producer, topic: str, timeout_seconds: float = 10.0) -> set[int]:
    """The partitions of `topic`, waiting for its metadata (a topic being created has none for a moment)."""
    client = cast(ConfluentProducer, producer).client
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_seconds
    while True:
        try:
            metadata = await asyncio.to_thread(client.list_topics, topic, timeout_seconds)
        except KafkaException as error:
            raise raised(error) from None
        described = metadata.topics.get(topic)
        if described is not None and described.error is None and described.partitions:
            return set(described.partitions)
        if loop.time() >= deadline:
            missing = described.error if described is not None and described.error is not None else None
            raise raised(missing or KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART, f"no metadata for {topic}"))
        await asyncio.sleep(0.1)


async def a_broker_answers(admin: Any, timeout_seconds: float) -> bool:
    """Whether a broker answers a metadata request within `timeout_seconds`: a real round trip, since cached
    metadata would say "up" through an outage. It asks for no topic, so the answer is the brokers alone however many
    topics the cluster holds; librdkafka sends it to a broker it is connected to, so one restarting in a roll fails
    no probe while another answers."""
    try:
        asked = admin.describe_cluster(request_timeout=timeout_seconds)
        await asyncio.wait_for(asyncio.wrap_future(asked), timeout_seconds)
    except (TimeoutError, KafkaException):
        return False
    return True


async def broker_answers(producer: Producer, timeout_seconds: float) -> bool:
    """Whether a broker `producer` connects to answers now (see `a_broker_answers`)."""
    return await a_broker_answers(cast(ConfluentProducer, producer).admin(), timeout_seconds)


def transactional_producer(settings: Settings, transactional_id: str, **tuning: Any) -> TransactionalProducer:
    """A producer of `transactional_id`'s transactions; `tuning` is librdkafka's properties beyond the
    connection's (pass dotted names as `**{"linger.ms": 5}`)."""
    config = connection_options(settings) | IDEMPOTENT | {"transactional.id": transactional_id} | tuning
    return ConfluentTransactionalProducer(config, 3 * settings.publish_timeout_seconds)


async def stop_producer(producer: Producer, timeout_seconds: float) -> None:
    """Flush and close, bounded: what no broker took by then fails."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(producer.stop(), timeout_seconds)


async def fenced(producer: TransactionalProducer, shutdown_timeout_seconds: float) -> TransactionalProducer:
    """`producer` (transactional) started, once every earlier producer of its transactional id is fenced: starting
    initialises its transactions, which fences them and completes their open transaction. Stopped again if that
    fails, or is cancelled."""
    try:
        await producer.start()
    except BaseException:
        await stop_producer(producer, shutdown_timeout_seconds)
        raise
    return producer


def transactional_id(settings: Settings) -> str:
    """The process's transactional id: one per consumer group and process (`KAFKA_INSTANCE_ID`, the pod's name on
    Kubernetes). The prefix matches the Strimzi KafkaUser's prefix ACL."""
    return f"{settings.kafka_transactional_id_prefix}{settings.kafka_consumer_group}-{settings.kafka_instance_id}"


class ProcessProducers:
    """Exactly-once's producers on librdkafka: one for the whole process, every partition's transactions on it, one
    at a time (KIP-447). Offsets go with `send_offsets_to_transaction` and the consumer's group metadata, so the
    group coordinator refuses a transaction of a member the group moved on from; and the partition's next owner
    reads its committed offset as stable only once that member's open transaction has ended. So taking a
    partition fences nobody's producer; only a failed transaction's producer that cannot abort is replaced (its
    successor, of the same transactional id, fences it)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._producer: ConfluentTransactionalProducer | None = None
        self._starting = asyncio.Lock()

    async def acquire(self, partition: Partition) -> TransactionalProducer:
        async with self._starting:
            producer = self._producer
            if producer is not None and producer.broken is not None:
                self._producer = None
                await stop_producer(producer, self._settings.shutdown_timeout_seconds)
                producer = None
            if producer is None:
                producer = self._producer = cast(
                    ConfluentTransactionalProducer,
                    transactional_producer(
                        self._settings,
                        transactional_id(self._settings),
                        **{
                            "linger.ms": 5,
                            "transaction.timeout.ms": self._settings.transaction_timeout_ms,
                            "request.timeout.ms": int(self._settings.publish_timeout_seconds * 1000),
                        },
                    ),
                )
            if not producer.initialised:
                # Fences every earlier producer of the process's transactional id (a predecessor of the same
                # instance id). One that timed out is resumed by the next acquire.
                try:
                    await producer.start()
                except BaseException as error:
                    if not isinstance(error, ERRORS.any) or not error.args[0].retriable():
                        self._producer = None
                        await stop_producer(producer, self._settings.shutdown_timeout_seconds)
                    raise
            return producer

    async def release(self, partition: Partition, producer: TransactionalProducer) -> None:
        """Nothing to stop: the producer goes on writing the process's other partitions."""

    async def discard(
        self, partition: Partition, producer: TransactionalProducer, deliveries: Iterable[Delivery]
    ) -> None:
        """The transaction was aborted when it failed (`transaction`), unless the producer could not: then it is
        replaced at the next `acquire`, whose producer fences it."""
        retrieve_exceptions(deliveries)

    async def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await stop_producer(producer, self._settings.shutdown_timeout_seconds)
