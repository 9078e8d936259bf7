"""The consumer runner's common part: polling, bounded retries, dead letters, lag. Subclasses decide when
offsets are committed, and so which delivery guarantee the service gives."""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import GroupAuthorizationFailedError, KafkaError, TopicAuthorizationFailedError

from .. import correlation
from ..events.catalog import CONSUMED_TOPICS, Topic, topic_named
from ..events.models import Event
from ..events.serde import DeserializationError, EventSerde, RegistryUnavailableError
from ..observability import metrics, tracing
from ..settings import Settings
from .connection import connection_options

log = logging.getLogger(__name__)

Handler = Callable[[Topic, Event], Awaitable[Sequence[Event]]]
"""Handles one event; returns the events it causes, which the runner publishes under its guarantee."""

Batch = dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]


def create_consumer(settings: Settings) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        **connection_options(settings),
        group_id=settings.kafka_consumer_group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        # Records of aborted (and still open) transactions are never handed to the handlers.
        isolation_level="read_committed",
        max_poll_records=settings.consumer_max_records,
        session_timeout_ms=settings.consumer_session_timeout_ms,
        heartbeat_interval_ms=settings.consumer_heartbeat_interval_ms,
    )


@dataclass(frozen=True)
class Handled:
    event: Event
    emitted: Sequence[Event]


@dataclass(frozen=True)
class Failed:
    """Dead-letter material: the handler kept failing, or the bytes are not an event (poison)."""

    error: Exception
    attempts: int


class Interrupted(Exception):
    """Shutdown came while a message was being retried: it stays uncommitted for the next owner."""


class Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Lets the runner settle its work before partitions move, and prepare before it reads new ones."""

    def __init__(self, runner: "ConsumerRunner") -> None:
        self._runner = runner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._runner.on_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._runner.on_assigned(assigned)
        metrics.assigned(assigned)
        self._runner.joined.set()
        log.info("assigned %s", sorted(f"{tp.topic}[{tp.partition}]" for tp in assigned))


class ConsumerRunner:
    """Polls batches and hands each to `_process_batch`; stops between messages, never in the middle of one."""

    def __init__(self, consumer: AIOKafkaConsumer, serde: EventSerde, handler: Handler, settings: Settings) -> None:
        self._consumer = consumer
        self._serde = serde
        self._handler = handler
        self._settings = settings
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._polling = False
        self.joined = asyncio.Event()

    async def start(self) -> None:
        self._consumer.subscribe([topic.name for topic in CONSUMED_TOPICS], listener=Rebalance(self))
        try:
            await self._consumer.start()
        except (GroupAuthorizationFailedError, TopicAuthorizationFailedError) as denied:
            # A missing ACL: no restart can grant it. Stay alive and unready, say why, and keep asking.
            log.error("Kafka denies the consumer (%r); it retries until the ACL is granted", denied)
            self._task = asyncio.create_task(self._start_when_allowed(), name="consumer-runner")
            return
        self._task = asyncio.create_task(self._run(), name="consumer-runner")

    async def _start_when_allowed(self, backoff_seconds: float = 1.0) -> None:
        while not self._stopping.is_set():
            await asyncio.sleep(backoff_seconds)
            backoff_seconds = min(backoff_seconds * 2, 30.0)
            try:
                await self._consumer.start()
            except (GroupAuthorizationFailedError, TopicAuthorizationFailedError) as denied:
                log.error("Kafka still denies the consumer (%r)", denied)
                continue
            await self._run()
            return

    async def stop(self) -> None:
        """Finish the message in hand, settle, leave the group."""
        self._stopping.set()
        if self._task is not None:
            if self._polling:
                # Nothing in hand; and a poll can wait indefinitely for an assignment while the broker is away.
                self._task.cancel()
            await asyncio.wait([self._task], timeout=self._settings.shutdown_timeout_seconds)
            if not self._task.done():
                # Sends of the batch in hand wait for a broker that is away: leave that batch uncommitted.
                self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._settle()
        try:
            await self._consumer.stop()
        except asyncio.CancelledError:
            # aiokafka's fetcher re-raises the cancellation of its own pending fetches when the broker is
            # unreachable, before closing its connections. Only a cancellation aimed at us may propagate.
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            await self._consumer._client.close()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def lag(self, timeout_seconds: float) -> dict[str, int]:
        """Records behind the end of each assigned partition, as of the last fetch: highwater minus position.

        Partitions not fetched from yet, or without a position within the timeout, are left out."""
        lag: dict[str, int] = {}
        for tp in sorted(self._consumer.assignment()):
            highwater = self._consumer.highwater(tp)
            if highwater is None:
                continue
            try:
                position = await asyncio.wait_for(self._consumer.position(tp), timeout_seconds)
            except (TimeoutError, KafkaError):
                continue
            lag[f"{tp.topic}[{tp.partition}]"] = max(highwater - position, 0)
        return lag

    async def on_assigned(self, assigned: set[TopicPartition]) -> None:
        """Called before the first fetch from newly assigned partitions."""

    async def on_revoked(self, revoked: set[TopicPartition]) -> None:
        """Called before partitions move to another consumer."""

    async def _settle(self) -> None:
        """Called once the loop stopped: make the work done so far durable."""

    async def _process_batch(self, batch: Batch) -> None:
        raise NotImplementedError

    async def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                self._polling = True
                batch = await self._consumer.getmany(timeout_ms=self._settings.consumer_poll_timeout_ms)
                self._polling = False
                if batch:
                    await self._process_batch(batch)
        except Interrupted:
            return
        except Exception:
            log.exception("consumer runner stopped on an unexpected error")
            raise

    async def _handle(self, record: ConsumerRecord[bytes, bytes]) -> Handled | Failed:
        """Decode and handle one record, retrying a failing handler with exponential backoff."""
        topic = topic_named(record.topic)
        tracing.continue_trace(record.headers)
        correlation.adopt(record.headers)  # the handler's logs and what it emits continue the record's work
        try:
            event = await self._decode(topic, record)
        except DeserializationError as poison:
            log.error("%s is not a %s event; dead-lettered: %r", where(record), topic.name, poison)
            metrics.consumed(record.topic, "dead_lettered")
            return Failed(poison, 0)
        backoff = self._settings.handler_retry_backoff_seconds
        attempts = 0
        while True:
            attempts += 1
            try:
                return Handled(event, await self._handler(topic, event))
            except Exception as failure:  # any handler failure is retried, then dead-lettered
                if attempts >= self._settings.handler_max_attempts:
                    log.error("%s dead-lettered after %d attempt(s): %r", where(record), attempts, failure)
                    metrics.consumed(record.topic, "dead_lettered")
                    return Failed(failure, attempts)
                if self._stopping.is_set():
                    raise Interrupted from failure
                log.warning("%s attempt %d failed: %r; retrying", where(record), attempts, failure)
                metrics.retried(record.topic)
                await asyncio.sleep(backoff)
                backoff *= 2

    async def _decode(self, topic: Topic, record: ConsumerRecord[bytes, bytes]) -> Event:
        """Decode, waiting out a registry outage: the message is fine, so it must neither fail nor be skipped."""
        backoff = self._settings.handler_retry_backoff_seconds
        while True:
            try:
                return await self._serde.deserialize(topic, record.value)
            except RegistryUnavailableError as outage:
                if self._stopping.is_set():
                    raise Interrupted from outage
                log.warning("%s waits for the schema registry: %r", where(record), outage)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)

    def _stop_requested(self) -> None:
        if self._stopping.is_set():
            raise Interrupted

    async def finished(self) -> None:
        """Wait until the runner's loop ends: after `stop`, or on an error it cannot handle."""
        if self._task is not None:
            await asyncio.wait([self._task])


def where(record: ConsumerRecord[bytes, bytes]) -> str:
    return f"{record.topic}[{record.partition}]@{record.offset}"
