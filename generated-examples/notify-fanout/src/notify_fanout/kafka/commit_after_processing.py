"""At-least-once: a message's offset is committed only after it was handled and what it emitted was stored."""

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from ..events.catalog import Topic
from ..events.models import Event
from ..events.serde import EventSerde
from ..observability import metrics
from ..processed import ProcessedEvents
from ..settings import Settings
from .consumer import Batch, ConsumerRunner, Failed, Handler
from .dead_letters import send_dead_letter
from .producer import send_event

log = logging.getLogger(__name__)


class CommitAfterProcessing(ConsumerRunner):
    """Handles a batch, waits until its emitted events and dead letters are acknowledged, records the handled
    event ids, then commits: a crash repeats work, never skips it.

    Repeats are absorbed by event id: an event already in `processed` is not handed to the handler again.
    Emitted events carry ids derived from their cause, so a repeated emission can be de-duplicated downstream.
    """

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        serde: EventSerde,
        handler: Handler,
        producer: AIOKafkaProducer,
        processed: ProcessedEvents,
        settings: Settings,
    ) -> None:
        super().__init__(consumer, serde, handler, settings)
        self._producer = producer
        self._processed = processed
        self._finished: dict[TopicPartition, int] = {}

    async def _process_batch(self, batch: Batch) -> None:
        deliveries: list[asyncio.Future[Any]] = []
        handled: list[Event] = []
        done: dict[TopicPartition, int] = {}
        try:
            for tp, records in batch.items():
                for record in records:
                    self._stop_requested()
                    outcome = await self._handle(record)
                    if isinstance(outcome, Failed):
                        deliveries.append(
                            await send_dead_letter(self._producer, record, outcome.error, outcome.attempts)
                        )
                    else:
                        handled.append(outcome.event)
                        for event in outcome.emitted:
                            deliveries.append(await send_event(self._producer, self._serde, event, outcome.event))
                    done[tp] = record.offset + 1
        finally:
            # Also on shutdown mid-batch: what was handled so far is settled, the rest stays uncommitted.
            await asyncio.gather(*deliveries)
            for event in handled:
                await self._processed.add(event.event_id)
            self._finished.update(done)
            await self.commit()

    async def _settle(self) -> None:
        await self.commit()

    async def on_revoked(self, revoked: set[TopicPartition]) -> None:
        # Commit finished work before the partitions move, so the new owner does not redo it.
        await self.commit(only=revoked)

    async def commit(self, only: set[TopicPartition] | None = None) -> None:
        offsets = {tp: offset for tp, offset in self._finished.items() if only is None or tp in only}
        if not offsets:
            return
        try:
            await self._consumer.commit(offsets)
        except KafkaError as error:
            # Typically the partition moved during a rebalance: its new owner repeats the work (at-least-once).
            log.warning("commit of %s failed: %r", offsets, error)
        for tp in offsets:
            if self._finished.get(tp) == offsets[tp]:
                del self._finished[tp]


def skipping_processed(handler: Handler, processed: ProcessedEvents) -> Handler:
    """The handler, except for events whose id `processed` already holds: those emit nothing and do nothing."""

    async def handle_once(topic: Topic, event: Event) -> list[Event]:
        if await processed.contains(event.event_id):
            log.info("skipping %s %s: already processed", type(event).__name__, event.event_id)
            metrics.consumed(topic.name, "duplicate")
            return []
        return list(await handler(topic, event))

    return handle_once
