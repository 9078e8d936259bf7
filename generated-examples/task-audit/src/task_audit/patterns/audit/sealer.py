"""The sealer: the audit log's only writer. It reads agent.audit.intake and appends each entry, chained, to
the same partition of agent.audit.

One transactional producer per partition: the sealed records and the intake offset commit together, so an entry
is sealed exactly once, and a new owner of the partition fences the old one before reading the last hash. The
chain of a partition therefore has one writer at a time and never forks."""

import asyncio
import json
import logging

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from ...kafka.connection import connection_options
from ...kafka.producer import stop_producer
from ...settings import Settings
from ..clients import stop_consumer
from . import names
from .chain import GENESIS, canonical, seal

log = logging.getLogger(__name__)


async def last_hash(settings: Settings, partition: int) -> str:
    """The hash of the last committed record of the audit log's `partition`, GENESIS when it has none."""
    reader = AIOKafkaConsumer(
        **connection_options(settings), isolation_level="read_committed", enable_auto_commit=False
    )
    try:
        await reader.start()
        tp = TopicPartition(names.AUDIT_TOPIC, partition)
        reader.assign([tp])
        begin = (await reader.beginning_offsets([tp]))[tp]
        end = (await reader.end_offsets([tp]))[tp]
        window = 64
        while True:
            start = max(begin, end - window)
            reader.seek(tp, start)
            last: ConsumerRecord[bytes, bytes] | None = None
            while await reader.position(tp) < end:
                for record in (await reader.getmany(tp, timeout_ms=500)).get(tp, []):
                    if record.offset < end:
                        last = record
            if last is not None:
                hashed: str = json.loads(last.value)["hash"]
                return hashed
            if start == begin:
                return GENESIS
            window *= 8  # only aborted transactions and markers in the window: look further back
    finally:
        await reader.stop()


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, sealer: "AuditSealer") -> None:
        self._sealer = sealer

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._sealer.release(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info("sealing audit partitions %s", sorted(tp.partition for tp in assigned))


class AuditSealer:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._key = settings.audit_chain_key.get_secret_value().encode()
        self._consumer = AIOKafkaConsumer(
            **(connection_options(settings) | {"client_id": f"{settings.kafka_client_id}-audit-sealer"}),
            group_id=names.SEALER_GROUP,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
        )
        self._producers: dict[TopicPartition, AIOKafkaProducer] = {}
        self._prev: dict[TopicPartition, str] = {}
        self._lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._consumer.subscribe([names.INTAKE_TOPIC], listener=_Rebalance(self))
        await self._consumer.start()
        self._task = asyncio.create_task(self._run(), name="audit-sealer")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            self._task.cancel()  # a transaction cut short aborts; its entries are sealed again by the next owner
            await asyncio.gather(self._task, return_exceptions=True)
        await self.release(set(self._producers))
        await stop_consumer(self._consumer)

    async def release(self, partitions: set[TopicPartition]) -> None:
        async with self._lock:
            for tp in partitions:
                self._prev.pop(tp, None)
                producer = self._producers.pop(tp, None)
                if producer is not None:
                    await stop_producer(producer, self._settings.shutdown_timeout_seconds)

    async def _run(self) -> None:
        while not self._stopping.is_set():
            batch = await self._consumer.getmany(timeout_ms=500)
            for tp, records in batch.items():
                async with self._lock:
                    if tp not in self._consumer.assignment():
                        continue
                    if tp not in self._producers:
                        await self._prepare(tp)  # moves the position: these records come again
                        continue
                    await self._seal(tp, records)

    async def _prepare(self, tp: TopicPartition) -> None:
        """Fence the partition's previous sealer, then resume from the committed intake offset and last hash."""
        producer = AIOKafkaProducer(
            **connection_options(self._settings),
            transactional_id=f"{self._settings.audit_transactional_id_prefix}{tp.partition}",
            acks="all",
            enable_idempotence=True,
        )
        try:  # also when stop() cancels us mid-way: a started producer is always stopped
            await producer.start()
            await producer.begin_transaction()
            await producer.commit_transaction()
            self._prev[tp] = await last_hash(self._settings, tp.partition)
            committed = await self._consumer.committed(tp)
        except BaseException:
            await stop_producer(producer, self._settings.shutdown_timeout_seconds)
            raise
        if committed is None:
            await self._consumer.seek_to_beginning(tp)
        else:
            self._consumer.seek(tp, committed)
        self._producers[tp] = producer

    async def _seal(self, tp: TopicPartition, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        producer = self._producers[tp]
        prev = self._prev[tp]
        try:
            async with producer.transaction():
                for record in records:
                    try:
                        entry = json.loads(record.value)
                    except ValueError:
                        entry = {"unreadable": record.value.hex()}
                    sealed = seal(self._key, prev, entry if isinstance(entry, dict) else {"value": entry})
                    await producer.send(names.AUDIT_TOPIC, canonical(sealed), key=record.key, partition=tp.partition)
                    prev = sealed["hash"]
                await producer.send_offsets_to_transaction({tp: records[-1].offset + 1}, names.SEALER_GROUP)
        except KafkaError as error:
            # Aborted, or its outcome unknown: fence and start over from what is committed.
            log.warning("sealing %s[%d] failed: %r; resuming from the committed offset", *tp, error)
            self._producers.pop(tp)
            self._prev.pop(tp)
            await stop_producer(producer, self._settings.shutdown_timeout_seconds)
            self._consumer.seek(tp, records[0].offset)
        else:
            self._prev[tp] = prev
