"""The port (port.py) on aiokafka: its consumer and producers speaking the port's types, its errors sorted as the
runner needs them, and how exactly-once gets its producers here (one per input partition: aiokafka has no
KIP-447, so a partition's transactions are fenced by a transactional id of the partition's own).

aiokafka's consumer and producer are extended rather than wrapped: a record, a send and a delivery go through
unchanged, only partitions are converted (aiokafka accepts its own TopicPartition only)."""

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import (
    CommitFailedError,
    CorruptRecordException,
    GroupAuthorizationFailedError,
    InvalidProducerEpoch,
    InvalidTimestampError,
    KafkaError,
    MessageSizeTooLargeError,
    ProducerFenced,
    RecordListTooLargeError,
    RecordTooLargeError,
    TopicAuthorizationFailedError,
    UnsupportedForMessageFormatError,
)
from aiokafka.protocol.metadata import MetadataRequest
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from ..settings import Settings
from .connection import connection_options
from .port import (
    ClientErrors,
    Consumer,
    Delivery,
    GroupMetadata,
    Partition,
    Producer,
    RebalanceListener,
    TransactionalProducer,
)
from .verification_retries import quiet_verification_retries

log = logging.getLogger(__name__)

ERRORS = ClientErrors(
    any=(KafkaError,),
    denied=(GroupAuthorizationFailedError, TopicAuthorizationFailedError),
    not_in_group=(CommitFailedError,),
    fenced=(ProducerFenced, InvalidProducerEpoch),
    record_rejected=(
        CorruptRecordException,
        InvalidTimestampError,
        MessageSizeTooLargeError,
        RecordListTooLargeError,
        RecordTooLargeError,
        TopicAuthorizationFailedError,
        UnsupportedForMessageFormatError,
    ),
)

MAX_REQUEST_SIZE: int = inspect.signature(AIOKafkaProducer).parameters["max_request_size"].default
"""The largest record the service's producers send (aiokafka's default; none of them changes it): aiokafka refuses
a larger one before sending it."""


def record_size(key: bytes | None, value: bytes | None, headers: Sequence[tuple[str, bytes | None]]) -> int:
    """The size aiokafka checks against its `max_request_size` before sending a record."""
    size: int = DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, headers)
    return size


def native(partition: Partition) -> TopicPartition:
    return TopicPartition(partition.topic, partition.partition)


def ours(tp: TopicPartition) -> Partition:
    return Partition(tp.topic, tp.partition)


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    """aiokafka's listener for a port's: eager (all partitions are revoked, then all are assigned)."""

    def __init__(self, listener: RebalanceListener) -> None:
        self._listener = listener

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._listener.on_partitions_revoked({ours(tp) for tp in revoked})

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._listener.on_partitions_assigned({ours(tp) for tp in assigned})


class AiokafkaConsumer(AIOKafkaConsumer):  # type: ignore[misc]
    """aiokafka's consumer as a `port.Consumer`."""

    def subscribe(self, topics: list[str], listener: RebalanceListener) -> None:
        super().subscribe(topics, listener=_Listener(listener))

    def assign(self, partitions: list[Partition]) -> None:
        super().assign([native(partition) for partition in partitions])

    async def stop(self) -> None:
        try:
            await super().stop()
        except asyncio.CancelledError:
            # aiokafka's fetcher re-raises the cancellation of its own pending fetches when the broker is
            # unreachable, before closing its connections. Only a cancellation aimed at us may propagate.
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            await self._client.close()

    async def getmany(
        self, *partitions: Partition, timeout_ms: int = 0
    ) -> dict[Partition, list[ConsumerRecord[bytes, bytes]]]:
        batch = await super().getmany(*(native(partition) for partition in partitions), timeout_ms=timeout_ms)
        return {ours(tp): records for tp, records in batch.items()}

    def assignment(self) -> set[Partition]:
        return {ours(tp) for tp in super().assignment()}

    def pause(self, *partitions: Partition) -> None:
        super().pause(*(native(partition) for partition in partitions))

    def resume(self, *partitions: Partition) -> None:
        super().resume(*(native(partition) for partition in partitions))

    def paused(self) -> set[Partition]:
        return {ours(tp) for tp in super().paused()}

    def seek(self, partition: Partition, offset: int) -> None:
        super().seek(native(partition), offset)

    async def position(self, partition: Partition) -> int:
        position: int = await super().position(native(partition))
        return position

    async def committed(self, partition: Partition) -> int | None:
        committed: int | None = await super().committed(native(partition))
        return committed

    def highwater(self, partition: Partition) -> int | None:
        highwater: int | None = super().highwater(native(partition))
        return highwater

    async def beginning_offsets(self, partitions: list[Partition]) -> dict[Partition, int]:
        beginnings = await super().beginning_offsets([native(partition) for partition in partitions])
        return {ours(tp): beginning for tp, beginning in beginnings.items()}

    async def end_offsets(self, partitions: list[Partition]) -> dict[Partition, int]:
        ends = await super().end_offsets([native(partition) for partition in partitions])
        return {ours(tp): end for tp, end in ends.items()}

    async def topics(self) -> set[str]:
        topics: set[str] = await super().topics()
        return topics

    async def commit(self, offsets: Mapping[Partition, int]) -> None:
        await super().commit({native(partition): offset for partition, offset in offsets.items()})

    def group_metadata(self) -> GroupMetadata:
        """The group's id: aiokafka's transactions name the group without its generation (no KIP-447)."""
        group: str = self._group_id
        return group


def create_consumer(settings: Settings, group_id: str | None = None, client_id: str | None = None) -> Consumer:
    """The consumer of a group (the service's own unless `group_id` says otherwise) as the runner uses it."""
    options = connection_options(settings)
    if client_id is not None:
        options["client_id"] = client_id
    return AiokafkaConsumer(
        **options,
        group_id=group_id or settings.kafka_consumer_group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        # Records of aborted (and still open) transactions are never handed to the handlers.
        isolation_level="read_committed",
        max_poll_records=settings.consumer_max_records,
        # aiokafka leaves the group when `getmany` is not called for this long; the runner polls while handlers
        # run, so only a stuck event loop comes near it, whatever the handlers' duration.
        max_poll_interval_ms=settings.consumer_max_poll_interval_ms,
        session_timeout_ms=settings.consumer_session_timeout_ms,
        heartbeat_interval_ms=settings.consumer_heartbeat_interval_ms,
        # A rebalance waits for the revoke listener, which waits for in-flight handlers up to its bound.
        rebalance_timeout_ms=settings.consumer_session_timeout_ms + int(settings.consumer_revoke_wait_seconds * 1000),
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
    options: dict[str, Any] = connection_options(settings)
    if client_id is not None:
        options["client_id"] = client_id
    if from_earliest:
        options["auto_offset_reset"] = "earliest"
    if max_records is not None:
        options["max_poll_records"] = max_records
    return AiokafkaConsumer(**options, group_id=group_id, isolation_level="read_committed", enable_auto_commit=False)


BATCH_BYTES = 256 * 1024
"""The most a partition's open batch holds. aiokafka keeps one open batch per partition, and every send that finds
it full waits (a timed wait each) until it is drained: with aiokafka's 16 KiB default, PUBLISH_MAX_IN_FLIGHT events
of about 300 bytes (four headers) fill it within one linger, and the waits cost more CPU than the sends. A batch
grows only as records arrive; 256 KiB stays well below the broker's 1 MiB `message.max.bytes`."""


def plain_producer(settings: Settings, idempotent: bool = False) -> Producer:
    """A producer of the client's defaults (waiting for every in-sync replica without duplicates, if
    `idempotent`), for tools that send a little or only ask for metadata."""
    options: dict[str, Any] = {"acks": "all", "enable_idempotence": True} if idempotent else {}
    producer: Producer = AIOKafkaProducer(**connection_options(settings), **options)
    return producer


def publish_producer(settings: Settings) -> Producer:
    """The publish path's producer (`producer.create_producer`): the guarantee's acknowledgement, batches of up to
    5 ms and BATCH_BYTES, each request bounded by PUBLISH_TIMEOUT_SECONDS."""
    producer: Producer = AIOKafkaProducer(
        **connection_options(settings),
        # Every in-sync replica stores the event before the ack, and the producer id with sequence numbers lets
        # the broker drop a resent batch it already has: retries (until the broker answers) never duplicate.
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        max_batch_size=BATCH_BYTES,
        request_timeout_ms=int(settings.publish_timeout_seconds * 1000),
    )
    return producer


async def partitions_of(producer: Producer, topic: str) -> set[int]:
    """The partitions of `topic`, waiting for its metadata."""
    partitions: set[int] = await cast(AIOKafkaProducer, producer).partitions_for(topic)
    return partitions


async def a_broker_answers(client: Any, timeout_seconds: float) -> bool:
    """Whether any broker the client knows answers a metadata request within `timeout_seconds`: a real round trip,
    since cached metadata would say "up" through an outage. It asks for no topic, so the answer is the brokers alone
    however many topics the cluster holds, and it asks every broker at once, so that one restarting in a roll (or
    hung) fails no probe while another answers."""
    asks = [
        asyncio.ensure_future(client.send(broker.nodeId, MetadataRequest([]))) for broker in client.cluster.brokers()
    ]
    try:
        for ask in asyncio.as_completed(asks, timeout=timeout_seconds):
            with contextlib.suppress(KafkaError, OSError):
                await ask
                return True
        return False
    except TimeoutError:
        return False
    finally:
        for ask in asks:
            ask.cancel()
        await asyncio.gather(*asks, return_exceptions=True)


async def broker_answers(producer: Producer, timeout_seconds: float) -> bool:
    """Whether a broker `producer` knows answers now (see `a_broker_answers`)."""
    return await a_broker_answers(cast(AIOKafkaProducer, producer).client, timeout_seconds)


class AiokafkaTransactionalProducer(AIOKafkaProducer):  # type: ignore[misc]
    """aiokafka's transactional producer as a `port.TransactionalProducer`."""

    async def send_offsets_to_transaction(self, offsets: Mapping[Partition, int], group: GroupMetadata) -> None:
        await super().send_offsets_to_transaction(
            {native(partition): offset for partition, offset in offsets.items()}, group
        )


def transactional_producer(settings: Settings, transactional_id: str, **tuning: Any) -> TransactionalProducer:
    """A producer of `transactional_id`'s transactions; `tuning` is aiokafka's options beyond the connection's."""
    return AiokafkaTransactionalProducer(
        **connection_options(settings),
        transactional_id=transactional_id,
        acks="all",
        enable_idempotence=True,
        **tuning,
    )


async def stop_producer(producer: AIOKafkaProducer, timeout_seconds: float) -> None:
    """Flush and close, bounded: while no broker answers, aiokafka would retry unsent records forever. (The publish
    path's `producer.stop_producer` does the same; this module cannot import it: the publish path reports through
    the metrics, which use this module.)"""
    try:
        await asyncio.wait_for(producer.stop(), timeout_seconds)
    except TimeoutError:
        log.warning("producer did not flush within %g s; unsent records dropped", timeout_seconds)
    else:
        log.info("producer flushed and closed")


async def fenced(producer: TransactionalProducer, shutdown_timeout_seconds: float) -> TransactionalProducer:
    """`producer` (transactional) started, once every earlier producer of its transactional id is fenced: beginning
    a transaction waits for the producer id, whose initialisation fences them and completes their open
    transaction; committing it empty sends nothing. Stopped again if that fails, or is cancelled."""
    try:
        await producer.start()
        await producer.begin_transaction()
        await producer.commit_transaction()
    except BaseException:
        await stop_producer(producer, shutdown_timeout_seconds)
        raise
    return producer


def retrieve_exceptions(futures: Iterable["asyncio.Future[Any]"]) -> None:
    """Mark the exceptions of futures nobody awaits any more as seen: the transaction they were part of failed,
    and that is logged once, not once per future when it is garbage collected."""
    for future in futures:
        future.add_done_callback(lambda done: done.cancelled() or done.exception())


def abandon_transaction(producer: AIOKafkaProducer, deliveries: Iterable["asyncio.Future[Any]"]) -> None:
    """The failed transaction's writes, and what a fenced producer's sender fails without anyone waiting for it
    (the transaction's end, each batch's drain; aiokafka has no public handle on them): their failure is the one
    logged. Called once the producer stopped, when its sender has failed all it will."""
    accumulator = producer._message_accumulator
    batches = [*(batch for queue in accumulator._batches.values() for batch in queue), *accumulator._pending_batches]
    internals = [producer._txn_manager.wait_for_transaction_end(), *(batch._drain_waiter for batch in batches)]
    retrieve_exceptions([*deliveries, *(future for future in internals if future is not None)])


def transactional_id(settings: Settings, tp: Partition) -> str:
    """One transactional id per consumer group and input partition. The prefix matches the Strimzi KafkaUser's
    prefix ACL."""
    return f"{settings.kafka_transactional_id_prefix}{settings.kafka_consumer_group}-{tp.topic}-{tp.partition}"


class PartitionProducers:
    """Exactly-once's producers on aiokafka: one per input partition, with the partition's transactional id.
    Whoever owns the partition next starts a producer with the same id, which fences this one and aborts its open
    transaction; a failed transaction's producer is stopped, and the next one fences it."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        quiet_verification_retries()

    async def acquire(self, partition: Partition) -> TransactionalProducer:
        producer = transactional_producer(
            self._settings,
            transactional_id(self._settings, partition),
            linger_ms=5,
            max_batch_size=BATCH_BYTES,
            transaction_timeout_ms=self._settings.transaction_timeout_ms,
            request_timeout_ms=int(self._settings.publish_timeout_seconds * 1000),
        )
        await fenced(producer, self._settings.shutdown_timeout_seconds)
        return producer

    async def release(self, partition: Partition, producer: Any) -> None:
        await stop_producer(producer, self._settings.shutdown_timeout_seconds)

    async def discard(self, partition: Partition, producer: Any, deliveries: Iterable[Delivery]) -> None:
        await stop_producer(producer, self._settings.shutdown_timeout_seconds)
        abandon_transaction(producer, deliveries)

    async def close(self) -> None:
        """Nothing to do: each producer stopped with its partition's `release` or `discard`."""
