"""At-most-once: a batch's offsets are committed before any of its messages is handled."""

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from ..events.serde import EventSerde
from ..settings import Settings
from .consumer import Batch, ConsumerRunner, Failed, Handler, Interrupted
from .dead_letters import send_dead_letter
from .producer import send_event

log = logging.getLogger(__name__)


class CommitBeforeProcessing(ConsumerRunner):
    """Commits a batch, then handles it: a crash skips the rest of the batch, never repeats a message.

    If the commit fails (the partitions moved in a rebalance) the batch is dropped unhandled, since its new
    owner reads it again from the previous commit.
    """

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

    async def _process_batch(self, batch: Batch) -> None:
        try:
            await self._consumer.commit(next_offsets(batch))
        except KafkaError as error:
            log.warning("commit failed, batch of %d dropped unhandled: %r", sum(map(len, batch.values())), error)
            return
        deliveries: list[asyncio.Future[Any]] = []
        try:
            for records in batch.values():
                for record in records:
                    self._stop_requested()
                    outcome = await self._handle(record)
                    if isinstance(outcome, Failed):
                        deliveries.append(
                            await send_dead_letter(self._producer, record, outcome.error, outcome.attempts)
                        )
                    else:
                        for event in outcome.emitted:
                            deliveries.append(await send_event(self._producer, self._serde, event, outcome.event))
        except Interrupted:
            log.warning("stopped mid-batch: the rest of the batch is committed and will not be handled")
            raise
        finally:
            await asyncio.gather(*deliveries)


def next_offsets(batch: Batch) -> dict[TopicPartition, int]:
    """One past the last record of each partition: committing these marks the whole batch as consumed."""
    return {tp: records[-1].offset + 1 for tp, records in batch.items() if records}
