"""One channel of the fan-out, run by its own consumer group.

At-least-once per channel: a record's offset is committed once the channel delivered it or dead-lettered it, so a
channel that was stopped (paused) or crashed replays from its last commit. Deliver idempotently by event_id.

A channel is the service's consumer runner (`kafka/consumer.py`) with the channel's own group and settings: it
polls while deliveries run, so a slow provider never costs the group membership; on a rebalance it lets the
deliveries in hand finish (up to CONSUMER_REVOKE_WAIT_SECONDS) and commits them before the partitions move; and
bytes that are not an event (a tombstone, another format, an unknown schema) go to the channel's dead-letter topic.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ... import correlation
from ...events.catalog import Topic
from ...events.models import Event
from ...events.serde import DeserializationError, EventSerde, RegistryUnavailableError
from ...kafka.client import ERRORS, create_consumer
from ...kafka.consumer import ConsumerRunner, Failed, Interrupted, Outcome, Rebalance, where
from ...kafka.hooks import NO_HOOKS, Hooks
from ...kafka.partition_work import PartitionWork
from ...kafka.port import Partition, Producer, Record
from ...observability import metrics
from ...settings import Settings
from ..clients import send_dead_letter
from .settings import FanoutSettings, get_fanout_settings

log = logging.getLogger(__name__)


Deliver = Callable[[Any], Awaitable[None]]
"""A channel's `deliver`: takes one event of the fanned-out topic; raising has it retried, then dead-lettered."""


@dataclass(frozen=True)
class Channel:
    name: str
    group: str
    dead_letter: str
    deliver: Deliver


def channel_settings(settings: Settings, fanout: FanoutSettings) -> Settings:
    """The runner's settings as a channel's: its poll timeout, batch size, attempts and backoff."""
    return settings.model_copy(
        update={
            "consumer_poll_timeout_ms": fanout.poll_timeout_ms,
            "consumer_max_records": fanout.max_records,
            "handler_max_attempts": fanout.max_attempts,
            "handler_retry_backoff_seconds": fanout.retry_backoff_seconds,
        }
    )


class ChannelRunner(ConsumerRunner):
    """Reads the topic as `channel.group`, delivers each event, and commits each partition up to its lowest
    undelivered record, past the last commit marker once all is delivered."""

    def __init__(
        self,
        channel: Channel,
        topic: Topic,
        serde: EventSerde,
        producer: Producer,
        settings: Settings,
        hooks: Hooks = NO_HOOKS,
        fanout: FanoutSettings | None = None,
    ) -> None:
        """`hooks` are the patterns' hooks on each record's outcome (an audit entry, for one)."""
        settings = channel_settings(settings, fanout or get_fanout_settings())
        consumer = create_consumer(
            settings, group_id=channel.group, client_id=f"{settings.kafka_client_id}-{channel.name}"
        )

        async def deliver(_topic: Topic, event: Event) -> Sequence[Event]:
            await channel.deliver(event)
            return ()

        super().__init__(consumer, serde, deliver, settings)
        self.channel = channel
        self._topic = topic
        self._producer = producer
        self._hooks = hooks
        self._committed: dict[Partition, int] = {}
        # Each partition's position after the last poll handed its records over: past its last record, and past
        # the commit marker a transactional producer wrote after it.
        self._read_to: dict[Partition, int] = {}
        self._commit_lock = asyncio.Lock()
        self._committing: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._consumer.subscribe([self._topic.name], listener=Rebalance(self))
        await self._consumer.start()
        self._task = asyncio.create_task(self._run(), name=f"fanout-{self.channel.name}")

    async def _decode_record(self, record: Record) -> tuple[Topic, Event] | Failed:
        correlation.adopt(record.headers)
        try:
            return self._topic, await self._decode(self._topic, record)
        except DeserializationError as poison:
            name, topic = self.channel.name, self._topic.name
            log.error("%s: %s is not a %s event; dead-lettered: %r", name, where(record), topic, poison)
            metrics.consumed(record.topic, "dead_lettered")
            return Failed(poison, 0)

    async def _decode(self, topic: Topic, record: Record) -> Event:
        """Any bytes that do not decode are poison, whatever the exception says (a registry outage excepted: the
        runner waits it out)."""
        try:
            return await super()._decode(topic, record)
        except (DeserializationError, RegistryUnavailableError, Interrupted):
            raise
        except Exception as error:
            raise DeserializationError(f"not a {topic.name} event: {error!r}") from error

    async def _complete(self, tp: Partition, record: Record, outcome: Outcome) -> None:
        sent: list[asyncio.Future[Any]] = []
        if isinstance(outcome, Failed):
            name = self.channel.name
            extra = (("dlq.channel", name.encode()), ("dlq.attempts", str(outcome.attempts).encode()))
            sent.append(await send_dead_letter(self._producer, self.channel.dead_letter, record, outcome.error, extra))
        result = "dead-lettered" if isinstance(outcome, Failed) else "delivered"
        sent += await self._hooks.on_processed(self._producer, record, result, by=self.channel.name)
        if sent:
            # The partition's next records go on while these wait for their acknowledgement.
            self._release(tp, record)
            await asyncio.gather(*sent)

    def _finished(self, tp: Partition, work: PartitionWork) -> None:
        self._commit_soon()

    def _commit_soon(self) -> None:
        if self._committing is None or self._committing.done():
            self._committing = asyncio.create_task(self._commit_while_finishing(), name="commit delivered records")

    async def _commit_while_finishing(self) -> None:
        while await self._commit(self._work):
            pass

    async def _polled(self) -> None:
        for tp in list(self._work):
            try:
                self._read_to[tp] = await self._consumer.position(tp)
            except ERRORS.any:  # no longer assigned
                self._read_to.pop(tp, None)
        self._commit_soon()

    async def _partitions_leaving(self, leaving: dict[Partition, PartitionWork]) -> None:
        # Commit what was delivered before the partitions move, so the new owner does not deliver it again.
        await self._commit(leaving)
        for tp in leaving:
            self._committed.pop(tp, None)
            self._read_to.pop(tp, None)

    async def _settle(self) -> None:
        if self._committing is not None:
            await asyncio.gather(self._committing, return_exceptions=True)
        await self._commit(self._work)

    def _commit_offset(self, tp: Partition, work: PartitionWork) -> int | None:
        """Up to the lowest undelivered record; once all is delivered, up to where the last poll read (past a commit
        marker too: the group's lag then reads 0, not 1)."""
        offset = work.commit_offset
        read_to = self._read_to.get(tp)
        if offset is not None and read_to is not None and work.drained and read_to > offset:
            return read_to
        return offset

    async def _commit(self, works: dict[Partition, PartitionWork]) -> bool:
        """Commit each partition up to its lowest undelivered record; whether there was anything new to commit."""
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
                # The partition moved: its new owner delivers again what this commit would have covered.
                log.warning("%s: commit of %s failed: %r", self.channel.name, offsets, error)
                return False
            self._committed.update(offsets)
            return True
