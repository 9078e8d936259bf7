"""Exactly-once: each partition's batch is handled inside one Kafka transaction holding its emitted events, its
dead letters and its consumed offsets; read_committed readers see all of them or none."""

import asyncio
import logging

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from ..events.serde import EventSerde
from ..observability import metrics
from ..settings import Settings
from .connection import connection_options
from .consumer import Batch, ConsumerRunner, Failed, Handler
from .dead_letters import send_dead_letter
from .producer import send_event, stop_producer
from .verification_retries import quiet_verification_retries

log = logging.getLogger(__name__)


def transactional_id(settings: Settings, tp: TopicPartition) -> str:
    """One transactional id per consumer group and input partition. Whoever owns the partition next starts a
    producer with the same id, which fences this one and aborts its open transaction (aiokafka has no
    KIP-447 group fencing). The prefix matches the Strimzi KafkaUser's prefix ACL."""
    return f"{settings.kafka_transactional_id_prefix}{settings.kafka_consumer_group}-{tp.topic}-{tp.partition}"


def create_transactional_producer(settings: Settings, tp: TopicPartition) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        **connection_options(settings),
        transactional_id=transactional_id(settings, tp),
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        transaction_timeout_ms=settings.transaction_timeout_ms,
        request_timeout_ms=int(settings.publish_timeout_seconds * 1000),
    )


class TransactionalProcessor(ConsumerRunner):
    """Consume-process-produce in transactions, one transactional producer per assigned partition.

    A crash or a failed commit aborts the transaction and the batch is read again from the committed offset:
    handlers may run twice, but their emitted events, dead letters and offsets take effect exactly once.
    Side effects outside Kafka are not covered: make those idempotent by event id.
    """

    def __init__(self, consumer: AIOKafkaConsumer, serde: EventSerde, handler: Handler, settings: Settings) -> None:
        super().__init__(consumer, serde, handler, settings)
        self._producers: dict[TopicPartition, AIOKafkaProducer] = {}
        # The committed offset of each owned partition: records below it were already processed by a previous
        # owner, whatever position the consumer's fetcher happens to be at.
        self._committed: dict[TopicPartition, int] = {}
        # Held while a transaction is open, so a rebalance waits for it instead of moving its partition mid-way.
        self._transaction_lock = asyncio.Lock()
        self._generation = 0
        quiet_verification_retries()

    async def on_assigned(self, assigned: set[TopicPartition]) -> None:
        # The fetcher reads new partitions while this runs: `_process_batch` may meet one first, and prepares it.
        for tp in sorted(assigned):
            async with self._transaction_lock:
                try:
                    await self._prepare(tp)
                except KafkaError as error:
                    log.warning("%s[%d] not ready for transactions yet: %r", *tp, error)

    async def _prepare(self, tp: TopicPartition, uncommitted_from: int | None = None) -> AIOKafkaProducer:
        """The partition's fenced producer, and its position moved to the committed offset; once per assignment."""
        producer = self._producers.get(tp)
        if producer is None:
            producer = await self._fenced_producer(tp)
            try:
                await self._resume_from_committed(tp, uncommitted_from)
            except BaseException:
                await stop_producer(producer, self._settings.shutdown_timeout_seconds)
                raise
            # Ready only now: a partition with a producer is one whose position this group may process from.
            self._producers[tp] = producer
        return producer

    async def _resume_from_committed(self, tp: TopicPartition, uncommitted_from: int | None = None) -> None:
        """Seek to the committed offset, or to `uncommitted_from` when the group never committed on `tp`."""
        # Read after fencing: the previous owner's last transaction has now completed, so this offset is final
        # (the position the consumer fetched at assignment may predate that commit).
        committed = await self._consumer.committed(tp)
        if committed is None:
            committed = uncommitted_from
        if committed is not None:
            self._committed[tp] = committed
            self._consumer.seek(tp, committed)

    async def on_revoked(self, revoked: set[TopicPartition]) -> None:
        async with self._transaction_lock:
            self._generation += 1
            for tp in revoked:
                self._committed.pop(tp, None)
            await self._stop_producers(revoked)

    async def _settle(self) -> None:
        async with self._transaction_lock:
            await self._stop_producers(set(self._producers))

    async def _stop_producers(self, partitions: set[TopicPartition]) -> None:
        # Together, not one after another: each may wait for its bound, and shutdown has one grace period.
        stopping = [self._producers.pop(tp) for tp in partitions if tp in self._producers]
        timeout = self._settings.shutdown_timeout_seconds
        await asyncio.gather(*(stop_producer(producer, timeout) for producer in stopping))

    async def _fenced_producer(self, tp: TopicPartition) -> AIOKafkaProducer:
        producer = create_transactional_producer(self._settings, tp)
        await producer.start()
        try:
            # Beginning a transaction waits for the producer id, whose initialisation fences any earlier producer
            # with this id and completes its open transaction; committing it empty sends nothing.
            await producer.begin_transaction()
            await producer.commit_transaction()
        except BaseException:
            await stop_producer(producer, self._settings.shutdown_timeout_seconds)
            raise
        return producer

    async def _process_batch(self, batch: Batch) -> None:
        generation = self._generation
        for tp, records in batch.items():
            async with self._transaction_lock:
                if self._generation != generation:
                    return  # a rebalance reset the positions: this batch is read again by whoever owns it now
                if tp not in self._producers:
                    # Fetched before the partition was prepared, maybe from a position the previous owner has
                    # moved past since: prepare it, which seeks to where this group's work resumes, and let the
                    # fetcher hand those records over again.
                    await self._prepare_or_rewind(tp, records[0].offset)
                    continue
                await self._process_in_transaction(self._producers[tp], tp, records)

    async def _prepare_or_rewind(self, tp: TopicPartition, first: int) -> None:
        """Prepare `tp`; if the broker refuses for now, read again from `first`: the position is already past it,
        and a record handed over is never dropped."""
        try:
            await self._prepare(tp, uncommitted_from=first)
        except KafkaError as error:
            log.warning("%s[%d] not ready for transactions: %r; reading again from offset %d", *tp, error, first)
            self._consumer.seek(tp, first)

    async def _process_in_transaction(
        self, producer: AIOKafkaProducer, tp: TopicPartition, records: list[ConsumerRecord[bytes, bytes]]
    ) -> None:
        # A batch fetched from a stale position repeats committed work: that part is done already.
        fresh = [record for record in records if record.offset >= self._committed.get(tp, 0)]
        if len(fresh) < len(records):
            log.info("%s[%d]: skipping %d records a previous owner committed", *tp, len(records) - len(fresh))
        if not fresh:
            return
        records = fresh
        try:
            async with producer.transaction():
                for record in records:
                    self._stop_requested()
                    outcome = await self._handle(record)
                    if isinstance(outcome, Failed):
                        await send_dead_letter(producer, record, outcome.error, outcome.attempts)
                    else:
                        for event in outcome.emitted:
                            await send_event(producer, self._serde, event, outcome.event)
                await producer.send_offsets_to_transaction(
                    {tp: records[-1].offset + 1}, self._settings.kafka_consumer_group
                )
        except KafkaError as error:
            # The outcome may be unknown (a commit can fail after the coordinator took it): fence, which completes
            # the transaction either way, then resume from whatever offset it left committed.
            log.warning("transaction for %s[%d] failed: %r; resuming from the committed offset", *tp, error)
            metrics.transaction("aborted")
            del self._producers[tp]
            await stop_producer(producer, self._settings.shutdown_timeout_seconds)
            await self._prepare_or_rewind(tp, records[0].offset)
        else:
            metrics.transaction("committed")
            self._committed[tp] = records[-1].offset + 1
