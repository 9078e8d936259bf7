"""At-most-once: records' offsets are committed before they are handled."""

import asyncio
import logging

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from ..events.serde import EventSerde
from ..settings import Settings
from .consumer import ConsumerRunner, Handler, Outcome
from .outcomes import send_outcome
from .partition_work import PartitionWork

log = logging.getLogger(__name__)


class CommitBeforeProcessing(ConsumerRunner):
    """Commits the records about to start, then handles them: a crash skips what was started and not finished,
    never repeats a message. Records fetched but not started are not committed: after a crash or a rebalance
    their next owner handles them.

    If the commit fails, those records are read again (or, when the partition moved, by its new owner from the
    previous commit), so none is handled without its commit first.
    """

    _lanes_go_on = False  # each record's offset is committed in `_launch`, before it starts

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        serde: EventSerde,
        handler: Handler,
        producer: AIOKafkaProducer,
        settings: Settings,
    ) -> None:
        super().__init__(consumer, serde, handler, settings)
        self._producer = producer
        self._committed: dict[TopicPartition, int] = {}
        # What the records about to start need committed; one commit covers every partition's wish so far.
        self._wanted: dict[TopicPartition, int] = {}
        self._commit_lock = asyncio.Lock()

    def _launch(self, tp: TopicPartition, work: PartitionWork, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        self._spawn(tp, self._commit_then_handle(tp, work, records), f"commit {tp.topic}[{tp.partition}]")

    async def _commit_then_handle(
        self, tp: TopicPartition, work: PartitionWork, records: list[ConsumerRecord[bytes, bytes]]
    ) -> None:
        offset = max(record.offset for record in records) + 1
        self._wanted[tp] = max(offset, self._wanted.get(tp, -1))
        try:
            async with self._commit_lock:
                if offset > self._committed.get(tp, -1):
                    wanted = dict(self._wanted)
                    await self._consumer.commit(wanted)
                    self._committed.update(wanted)
        except KafkaError as error:
            self._wanted.pop(tp, None)
            # Everything from the last commit on is uncommitted, so none of it started: read it all again.
            again = self._committed.get(tp, work.first_offset)
            log.warning("commit failed, %s[%d] read again from offset %s: %r", *tp, again, error)
            if self._work.get(tp) is work and tp in self._consumer.assignment() and again is not None:
                self.positions_reset({tp})
                del self._work[tp]
                self._consumer.seek(tp, again)
            return
        super()._launch(tp, work, records)

    async def _complete(self, tp: TopicPartition, record: ConsumerRecord[bytes, bytes], outcome: Outcome) -> None:
        deliveries = await send_outcome(self._producer, self._serde, record, outcome)
        self._release(tp, record)
        await asyncio.gather(*deliveries)

    async def on_revoked(self, revoked: set[TopicPartition]) -> None:
        await super().on_revoked(revoked)
        for tp in revoked:
            self._committed.pop(tp, None)
            self._wanted.pop(tp, None)
