"""Consuming: a raw aiokafka consume loop next to the service's exactly-once runner, each reading the
same backlog from the start on a consumer group of its own, with the service's handlers.

The raw loop decodes with plain fastavro and writes what the service's handlers would emit for the event, with an
idempotent producer, committing each polled batch's offsets once its writes are acknowledged: no duplicate from a
resend, but not transactional.

An event's latency is from its fetch to the commit that covers it."""

import asyncio
import time
import uuid
from collections import deque
from io import BytesIO
from typing import Any, cast

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from confluent_kafka.schema_registry import AsyncSchemaRegistryClient
from fastavro import parse_schema, schemaless_reader

from agent_ops.dispatch import HANDLER_METHODS, Dispatcher
from agent_ops.events.avro import AvroSerde, load_schema
from agent_ops.events.catalog import Topic, topic_for
from agent_ops.events.models import Event
from agent_ops.handlers import EventHandlers
from agent_ops.kafka.client import committed_reader, partitions_of, plain_producer
from agent_ops.kafka.connection import connection_options
from agent_ops.kafka.consumer import ConsumerRunner, Handler
from agent_ops.kafka.port import Partition
from agent_ops.kafka.producer import create_producer, send_event
from agent_ops.kafka.runners import create_runner
from agent_ops.main import chosen_plugins
from agent_ops.observability.handling import observed
from agent_ops.plugins import hooks_of
from agent_ops.read_model import LatestEventByKey
from agent_ops.settings import Settings

from .measure import Row, Run, alternate, row
from .producer import RawAvro, events_of, raw_producer

TIMEOUT_SECONDS = 300.0


class Progress:
    """When each polled record was fetched and when a commit covered it: the rate, and each record's latency."""

    def __init__(self, start: dict[Partition, int], end: dict[Partition, int]) -> None:
        self._end = {tp: offset for tp, offset in end.items() if offset > start[tp]}
        self._events = sum(end[tp] - start[tp] for tp in self._end)
        self._fetched: dict[Partition, deque[list[Any]]] = {tp: deque() for tp in end}
        self._committed: dict[Partition, int] = dict(start)
        self._latencies: list[float] = []
        self._first: float | None = None
        self._last = 0.0
        self._cpu_first = self._cpu_last = 0.0
        self.done = asyncio.Event()

    def fetched(self, batch: dict[Partition, tuple[int, int]]) -> None:
        """Note a poll: each partition's first offset fetched and the one after its last."""
        now = time.perf_counter()
        for tp, (first, stop) in batch.items():
            if tp in self._fetched:
                if self._first is None:
                    self._first, self._cpu_first = now, time.process_time()
                self._fetched[tp].append([first, stop, now])

    def committed(self, offsets: dict[Partition, Any]) -> None:
        now = time.perf_counter()
        for tp, committed in offsets.items():
            offset = committed if isinstance(committed, int) else committed.offset
            batches = self._fetched.get(tp, deque())
            while batches and batches[0][0] < offset:
                first, stop, fetched_at = batches[0]
                self._latencies.extend([now - fetched_at] * (min(stop, offset) - first))
                if stop <= offset:
                    batches.popleft()
                else:
                    batches[0][0] = offset
            self._committed[tp] = max(self._committed.get(tp, 0), offset)
        if all(self._committed[tp] >= end for tp, end in self._end.items()):
            self._last, self._cpu_last = now, time.process_time()
            self.done.set()

    def run(self) -> Run:
        seconds = self._last - (self._first or self._last)
        return Run(self._events, seconds, self._latencies, cpu_seconds=self._cpu_last - self._cpu_first)

    def watch(self, consumer: Any) -> None:
        """Note the fetches and commits of `consumer` (a `port.Consumer`, instrumented in place)."""
        getmany, commit = consumer.getmany, consumer.commit

        async def fetch(*args: Any, **kwargs: Any) -> Any:
            batch = await getmany(*args, **kwargs)
            self.fetched({tp: (records[0].offset, records[-1].offset + 1) for tp, records in batch.items() if records})
            return batch

        async def commit_and_note(offsets: dict[Partition, Any]) -> None:
            await commit(offsets)
            self.committed(offsets)

        consumer.getmany, consumer.commit = fetch, commit_and_note


class Backlog:
    """`count` events on the consumed topic, and each partition's offsets before and after them."""

    def __init__(self, topic: Topic, start: dict[Partition, int], end: dict[Partition, int]) -> None:
        self.topic = topic
        self.start = start
        self.end = end

    @classmethod
    async def publish(cls, settings: Settings, serde: AvroSerde, topic: Topic, count: int) -> "Backlog":
        producer = create_producer(settings)
        await producer.start()
        try:
            start = await end_offsets(settings, topic)
            deliveries = [await send_event(producer, serde, event) for event in events_of(topic, count, "backlog")]
            await asyncio.gather(*deliveries)
            return cls(topic, start, await end_offsets(settings, topic))
        finally:
            await producer.stop()

    async def new_group(self, settings: Settings, name: str) -> str:
        """A consumer group that starts at the backlog's first event."""
        group = f"bench-{name}-{uuid.uuid4().hex[:8]}"
        committer = committed_reader(settings, group_id=group)
        await committer.start()
        try:
            committer.assign(list(self.start))
            await committer.commit(dict(self.start))
        finally:
            await committer.stop()
        return group


async def end_offsets(settings: Settings, topic: Topic) -> dict[Partition, int]:
    metadata = plain_producer(settings)
    await metadata.start()
    try:
        partitions = await partitions_of(metadata, topic.name)  # fresh: the topic may have grown
    finally:
        await metadata.stop()
    probe = committed_reader(settings)
    await probe.start()
    try:
        return await probe.end_offsets([Partition(topic.name, p) for p in sorted(partitions)])
    finally:
        await probe.stop()


def service_handler() -> Handler:
    """The handler chain the app gives its runner when it does not trace (no OTEL_EXPORTER_OTLP_ENDPOINT, the
    default): metrics, dispatch, the generated handlers."""
    return observed(Dispatcher(EventHandlers(), LatestEventByKey()), None)


class RawLoop:
    """The hand-written consume loop, doing what the service does to each event minus its layers: decode it with
    plain fastavro, call the same handler method (on the decoded fields, unvalidated), and write the events it
    returns (encoded by plain fastavro)."""

    def __init__(self, settings: Settings, topic: Topic, headers: dict[type[Event], bytes]) -> None:
        self._settings = settings
        self._topic = topic
        self._event_type = topic.event_types[0]
        self._schema = parse_schema(load_schema(self._event_type))
        self._handle_event = getattr(EventHandlers(), HANDLER_METHODS[self._event_type])
        self._encoders = {event_type: RawAvro(header, event_type) for event_type, header in headers.items()}

    async def run(self, group: str, progress: Progress, producer: AIOKafkaProducer) -> None:
        settings = self._settings
        consumer = AIOKafkaConsumer(
            **connection_options(settings),
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_poll_records=settings.consumer_max_records,
        )
        consumer.subscribe([self._topic.name])
        await consumer.start()
        try:
            while not progress.done.is_set():
                batch = await consumer.getmany(timeout_ms=settings.consumer_poll_timeout_ms)
                progress.fetched({tp: (rs[0].offset, rs[-1].offset + 1) for tp, rs in batch.items() if rs})
                offsets = {tp: rs[-1].offset + 1 for tp, rs in batch.items() if rs}
                await asyncio.gather(*await self._handle(batch, producer))
                if offsets:
                    await consumer.commit(offsets)
                    progress.committed(offsets)
        finally:
            await consumer.stop()

    async def _handle(
        self, batch: dict[Partition, list[Any]], producer: AIOKafkaProducer
    ) -> list["asyncio.Future[Any]"]:
        deliveries = []
        for records in batch.values():
            for record in records:
                fields = cast(dict[str, Any], schemaless_reader(BytesIO(record.value[5:]), self._schema, None))
                for event in await self._handle_event(self._event_type.model_construct(**fields)):
                    topic, encoder = topic_for(event), self._encoders[type(event)]
                    deliveries.append(await producer.send(topic.name, encoder.encode(event), key=topic.key_of(event)))
        return deliveries


async def run_service(settings: Settings, serde: AvroSerde, group: str, progress: Progress, producer: Any) -> None:
    group_settings = settings.model_copy(update={"kafka_consumer_group": group})
    runner = create_runner(group_settings, serde, service_handler(), producer, hooks_of(chosen_plugins()))
    watch_runner(runner, progress)
    await runner.start()
    try:
        await asyncio.wait_for(progress.done.wait(), TIMEOUT_SECONDS)
    finally:
        await runner.stop()


def watch_runner(runner: ConsumerRunner, progress: Progress) -> None:
    progress.watch(runner._consumer)
    # Offsets commit with each transaction, not through the consumer: note them when a transaction committed.
    write_handled = runner._write_handled  # type: ignore[attr-defined]
    committed: dict[Partition, int] = runner._committed  # type: ignore[attr-defined]

    async def write_and_note(tp: Partition, work: Any) -> bool:
        wrote: bool = await write_handled(tp, work)
        if wrote:
            progress.committed({tp: committed[tp]})
        return wrote

    setattr(runner, "_write_handled", write_and_note)  # noqa: B010


RAW = "aiokafka idempotent loop"
SERVICE = "service transactional runner"
GOAL: float | None = 0.85


async def bench(settings: Settings, topic: Topic, count: int, repetitions: int) -> list[Row]:
    registry = AsyncSchemaRegistryClient({"url": settings.schema_registry_url})
    serde = AvroSerde(registry, settings.schema_subject_strategy, settings.schema_auto_register)
    producer = create_producer(settings)
    plain = raw_producer(settings)
    await producer.start()
    await plain.start()
    try:
        backlog = await Backlog.publish(settings, serde, topic, count)
        emitted = await service_handler()(topic, events_of(topic, 1, "sample")[0])
        headers = {type(event): (await serde.serialize(topic_for(event), event))[:5] for event in emitted}
        loop = RawLoop(settings, topic, headers)

        async def raw_once() -> Run:
            progress = Progress(backlog.start, backlog.end)
            await asyncio.wait_for(loop.run(await backlog.new_group(settings, "raw"), progress, plain), TIMEOUT_SECONDS)
            return progress.run()

        async def service_once() -> Run:
            progress = Progress(backlog.start, backlog.end)
            await run_service(settings, serde, await backlog.new_group(settings, "service"), progress, producer)
            return progress.run()

        raw_runs, service_runs = await alternate(repetitions, raw_once, service_once)
        notes = {"events": count, "emitted_per_event": len(emitted), "max_records": settings.consumer_max_records}
        return [
            row("consume", RAW, raw_runs, notes=notes),
            row("consume", SERVICE, service_runs, baseline=RAW, goal=GOAL, notes=notes),
        ]
    finally:
        await plain.stop()
        await producer.stop()
        await registry.aclose()
