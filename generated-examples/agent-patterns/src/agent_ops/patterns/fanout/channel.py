"""One channel of the fan-out, run by its own consumer group.

At-least-once per channel: a record's offset is committed once the channel delivered it or dead-lettered it, so a
channel that was stopped (paused) or crashed replays from its last commit. Deliver idempotently by event_id.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from ... import correlation
from ...events.catalog import Topic
from ...events.serde import DeserializationError, EventSerde, RegistryUnavailableError
from ...kafka.connection import connection_options
from ...settings import Settings
from ..audit.intake import record_processed
from ..clients import stop_consumer

log = logging.getLogger(__name__)


class _Stopped(Exception):
    """Shutdown came while the record in hand waited for the schema registry: it stays uncommitted."""


Deliver = Callable[[Any], Awaitable[None]]
"""A channel's `deliver`: takes one event of the fanned-out topic; raising has it retried, then dead-lettered."""


@dataclass(frozen=True)
class Channel:
    name: str
    group: str
    dead_letter: str
    deliver: Deliver


class ChannelRunner:
    """Reads the topic as `channel.group`, delivers each event, commits after each batch; stops between records."""

    def __init__(
        self, channel: Channel, topic: Topic, serde: EventSerde, producer: AIOKafkaProducer, settings: Settings
    ) -> None:
        self.channel = channel
        self._topic = topic
        self._serde = serde
        self._producer = producer
        self._settings = settings
        self._consumer = AIOKafkaConsumer(
            topic.name,
            **(connection_options(settings) | {"client_id": f"{settings.kafka_client_id}-{channel.name}"}),
            group_id=channel.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_poll_records=settings.fanout_max_records,
        )
        self._stopping = asyncio.Event()
        self._polling = False
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._consumer.start()
        self._task = asyncio.create_task(self._run(), name=f"fanout-{self.channel.name}")

    async def stop(self) -> None:
        """Finish the record in hand, commit what was delivered, leave the group."""
        self._stopping.set()
        if self._task is not None:
            if self._polling:
                self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await stop_consumer(self._consumer)

    async def finished(self) -> None:
        if self._task is not None:
            await asyncio.wait([self._task])

    async def _run(self) -> None:
        while not self._stopping.is_set():
            self._polling = True
            batch = await self._consumer.getmany(timeout_ms=self._settings.fanout_poll_timeout_ms)
            self._polling = False
            for tp, records in batch.items():
                await self._process(tp, records)

    async def _process(self, tp: TopicPartition, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        deliveries: list[asyncio.Future[Any]] = []
        done: int | None = None
        try:
            for record in records:
                if self._stopping.is_set():
                    break
                try:
                    deliveries.extend(await self._deliver(record))
                except _Stopped:
                    break
                done = record.offset + 1
        finally:
            # Dead letters (and audit entries) are stored before the offset moves past their records.
            await asyncio.gather(*deliveries)
            if done is not None:
                await self._consumer.commit({tp: done})

    async def _deliver(self, record: ConsumerRecord[bytes, bytes]) -> list["asyncio.Future[Any]"]:
        correlation.adopt(record.headers)
        outcome = "delivered"
        sent: list[asyncio.Future[Any]] = []
        error = await self._attempt(record)
        if error is not None:
            outcome = "dead-lettered"
            sent.append(await self._dead_letter(record, error))
        sent.append(await record_processed(self._producer, record, outcome, by=self.channel.name))
        return sent

    async def _attempt(self, record: ConsumerRecord[bytes, bytes]) -> Exception | None:
        """None once delivered; the last error when retries are exhausted or the bytes are not an event."""
        backoff = self._settings.fanout_retry_backoff_seconds
        attempts = 0
        while True:
            try:
                event = await self._serde.deserialize(self._topic, record.value)
            except DeserializationError as poison:
                return poison
            except RegistryUnavailableError as outage:
                # The record is fine: wait out the registry, unless stopping (the record is then replayed).
                if self._stopping.is_set():
                    raise _Stopped from outage
                await asyncio.sleep(backoff)
                continue
            attempts += 1
            try:
                await self.channel.deliver(event)
                return None
            except Exception as failure:  # any delivery failure is retried, then dead-lettered
                if attempts >= self._settings.fanout_max_attempts:
                    name = self.channel.name
                    log.error("%s: %s dead-lettered after %d attempts: %r", name, event.event_id, attempts, failure)
                    return failure
                log.warning("%s: %s attempt %d failed: %r", self.channel.name, event.event_id, attempts, failure)
                await asyncio.sleep(backoff)
                backoff *= 2

    async def _dead_letter(self, record: ConsumerRecord[bytes, bytes], error: Exception) -> "asyncio.Future[Any]":
        headers = [
            *record.headers,
            ("dlq.original.topic", record.topic.encode()),
            ("dlq.original.partition", str(record.partition).encode()),
            ("dlq.original.offset", str(record.offset).encode()),
            ("dlq.channel", self.channel.name.encode()),
            ("dlq.error.type", type(error).__name__.encode()),
            ("dlq.error.message", str(error)[:1000].encode()),
        ]
        delivery: asyncio.Future[Any] = await self._producer.send(
            self.channel.dead_letter, record.value, key=record.key, headers=headers
        )
        return delivery
