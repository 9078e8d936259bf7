"""At-least-once: a message's offset is committed only after it was handled and what it emitted was stored."""

import asyncio
import logging

from ..events.serde import EventSerde
from ..observability import metrics
from ..processed import ProcessedEvents
from ..settings import Settings
from .client import ERRORS
from .consumer import ConsumerRunner, Failed, Handler, Outcome
from .hooks import NO_HOOKS, Hooks
from .outcomes import send_outcome
from .partition_work import PartitionWork
from .port import Consumer, Partition, Producer, Record

log = logging.getLogger(__name__)


class CommitAfterProcessing(ConsumerRunner):
    """Handles each record, waits until its emitted events (or its dead letter) are acknowledged and its event id
    is recorded, and only then counts it finished; commits each partition up to its lowest unfinished record. A
    crash repeats work, never skips it.

    Repeats are absorbed by event id: an event already in `processed` is not handed to the handler again.
    Emitted events carry ids derived from their cause, so a repeated emission can be de-duplicated downstream.
    """

    def __init__(
        self,
        consumer: Consumer,
        serde: EventSerde,
        handler: Handler,
        producer: Producer,
        processed: ProcessedEvents,
        settings: Settings,
        hooks: Hooks = NO_HOOKS,
    ) -> None:
        super().__init__(consumer, serde, handler, settings)
        self._producer = producer
        self._hooks = hooks
        self._processed = processed
        self._committed: dict[Partition, int] = {}
        # Each partition's position after the last poll handed its records over: past its last record, and past
        # the commit marker a transactional producer (Kafka Connect's exactly-once sources, for one) wrote after it.
        self._read_to: dict[Partition, int] = {}
        # One commit at a time, so a partition's offsets reach the broker in order.
        self._commit_lock = asyncio.Lock()
        self._committing: asyncio.Task[None] | None = None
        # The client gives up on a batch after its request timeout; a retry or two may follow before that.
        self._ack_bound_seconds = 3 * settings.publish_timeout_seconds

    async def start(self) -> None:
        await self._processed.open()
        await super().start()

    async def stop(self) -> None:
        try:
            await super().stop()
        finally:
            await self._processed.close()

    async def _process_record(self, tp: Partition, record: Record) -> None:
        decoded = await self._decode_record(record)
        if isinstance(decoded, Failed):
            await self._complete(tp, record, decoded)
            return
        topic, event = decoded
        # Entered before the handler runs and left once what it emitted is stored: a shared store also keeps a
        # second pod from handling the same event at the same time.
        async with self._processed.once(event.event_id) as first:
            if not first:
                log.info("skipping %s %s: already processed", type(event).__name__, event.event_id)
                metrics.consumed(topic.name, "duplicate")
                return
            await self._complete(tp, record, await self._call_handler(record, topic, event))

    async def _complete(self, tp: Partition, record: Record, outcome: Outcome) -> None:
        deliveries = await send_outcome(self._producer, self._hooks, record, outcome)
        if deliveries:
            # The partition's next records go on in a lane of their own while this one waits for the acks.
            self._release(tp, record)
            # Bounded: the event's id stays claimed meanwhile (a shared store's row lock, which the partition's
            # next owner waits for). Past the bound the id is left unrecorded and the runner stops, unacknowledged.
            await asyncio.wait_for(asyncio.gather(*deliveries), self._ack_bound_seconds)

    def _finished(self, tp: Partition, work: PartitionWork) -> None:
        # Commit what finished without waiting for the next poll, which may wait its whole timeout for records;
        # while a commit is under way, records finishing meanwhile go into the next one.
        self._commit_soon()

    def _commit_soon(self) -> None:
        if self._committing is None or self._committing.done():
            self._committing = asyncio.create_task(self._commit_while_finishing(), name="commit finished records")

    async def _commit_while_finishing(self) -> None:
        while await self._commit(self._work):
            pass

    async def _polled(self) -> None:
        for tp in list(self._work):
            try:
                self._read_to[tp] = await self._consumer.position(tp)
            except ERRORS.any:  # no longer assigned
                self._read_to.pop(tp, None)
        # In the background: polling goes on during the commit's round trip.
        self._commit_soon()

    async def _partitions_leaving(self, leaving: dict[Partition, PartitionWork]) -> None:
        # Commit finished work before the partitions move, so the new owner does not redo it.
        await self._commit(leaving)
        for tp in leaving:
            self._committed.pop(tp, None)
            self._read_to.pop(tp, None)

    async def _settle(self) -> None:
        if self._committing is not None:
            await asyncio.gather(self._committing, return_exceptions=True)
        await self._commit(self._work)

    def _commit_offset(self, tp: Partition, work: PartitionWork) -> int | None:
        """Up to the lowest unfinished record; once all is finished, up to where the last poll read: a commit
        marker after the last record is then committed past too, and the group's lag reads 0, not 1."""
        offset = work.commit_offset
        read_to = self._read_to.get(tp)
        if offset is not None and read_to is not None and work.drained and read_to > offset:
            return read_to
        return offset

    async def _commit(self, works: dict[Partition, PartitionWork]) -> bool:
        """Commit each partition up to its lowest unfinished record; whether there was anything new to commit."""
        async with self._commit_lock:
            offsets = {
                tp: offset
                for tp, work in works.items()
                if (offset := self._commit_offset(tp, work)) is not None and self._committed.get(tp) != offset
            }
            if not offsets:
                return False
            try:
                await self._consumer.commit(offsets)
            except ERRORS.any as error:
                # Typically the partition moved during a rebalance: its new owner repeats the work (at-least-once).
                log.warning("commit of %s failed: %r", offsets, error)
                return False
            self._committed.update(offsets)
            return True
