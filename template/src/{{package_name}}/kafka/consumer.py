"""The consumer runner: at-least-once processing, committing each offset only after its message was handled."""

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from ..events.catalog import CONSUMED_TOPICS, Topic, topic_named
from ..events.models import Event
from ..events.serde import DeserializationError, EventSerde
from ..settings import Settings
from .connection import connection_options
from .dead_letters import DeadLetterPublisher

log = logging.getLogger(__name__)

Handler = Callable[[Topic, Event], Awaitable[None]]


def create_consumer(settings: Settings) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        **connection_options(settings),
        group_id=settings.kafka_consumer_group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_poll_records=settings.consumer_max_records,
        session_timeout_ms=settings.consumer_session_timeout_ms,
        heartbeat_interval_ms=settings.consumer_heartbeat_interval_ms,
    )


class CommitOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    """Commits finished work before partitions move to another consumer, so the new owner does not redo it."""

    def __init__(self, runner: "CommitAfterProcessing") -> None:
        self._runner = runner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._runner.commit(only=revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self._runner.joined.set()
        log.info("assigned %s", sorted(f"{tp.topic}[{tp.partition}]" for tp in assigned))


class CommitAfterProcessing:
    """Runs each message through the handler, then commits it: a crash repeats work, never skips it.

    A failing message is retried with exponential backoff, then sent to `<topic>.dlq` and committed, so one
    bad message never stalls its partition. Bytes that cannot be decoded go to the dead-letter topic at once.
    """

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        serde: EventSerde,
        handler: Handler,
        dead_letters: DeadLetterPublisher,
        settings: Settings,
    ) -> None:
        self._consumer = consumer
        self._serde = serde
        self._handler = handler
        self._dead_letters = dead_letters
        self._settings = settings
        self._finished: dict[TopicPartition, int] = {}
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._polling = False
        self.joined = asyncio.Event()

    async def start(self) -> None:
        self._consumer.subscribe([topic.name for topic in CONSUMED_TOPICS], listener=CommitOnRevoke(self))
        await self._consumer.start()
        self._task = asyncio.create_task(self._run(), name="consumer-runner")

    async def stop(self) -> None:
        """Finish the message in hand, commit, leave the group."""
        self._stopping.set()
        if self._task is not None:
            if self._polling:
                # Nothing in hand; and a poll can wait indefinitely for an assignment while the broker is away.
                self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.commit()
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

    async def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                self._polling = True
                batches = await self._consumer.getmany(timeout_ms=self._settings.consumer_poll_timeout_ms)
                self._polling = False
                for records in batches.values():
                    for record in records:
                        if self._stopping.is_set():
                            return
                        await self._process(record)
                await self.commit()
        except Exception:
            log.exception("consumer runner stopped on an unexpected error")
            raise

    async def _process(self, record: ConsumerRecord[bytes, bytes]) -> None:
        topic = topic_named(record.topic)
        attempts = 0
        error: Exception
        try:
            event = await self._serde.deserialize(topic, record.value)
        except DeserializationError as poison:
            error = poison
        else:
            backoff = self._settings.handler_retry_backoff_seconds
            while True:
                attempts += 1
                try:
                    await self._handler(topic, event)
                except Exception as failure:  # any handler failure is retried, then dead-lettered
                    error = failure
                    if attempts >= self._settings.handler_max_attempts or self._stopping.is_set():
                        break
                    log.warning("%s attempt %d failed: %r; retrying", _where(record), attempts, failure)
                    await asyncio.sleep(backoff)
                    backoff *= 2
                else:
                    self._finished[TopicPartition(record.topic, record.partition)] = record.offset + 1
                    return
        if self._stopping.is_set() and not isinstance(error, DeserializationError):
            return  # leave it uncommitted: the next owner retries it from scratch
        log.error("%s dead-lettered after %d attempt(s): %r", _where(record), attempts, error)
        await self._dead_letters.send(record, error, attempts)
        self._finished[TopicPartition(record.topic, record.partition)] = record.offset + 1

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


def _where(record: ConsumerRecord[bytes, bytes]) -> str:
    return f"{record.topic}[{record.partition}]@{record.offset}"
