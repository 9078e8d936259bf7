"""Publishing: a raw librdkafka producer with the service's settings, sending records encoded by plain
fastavro, next to the service's `EventPublisher` (Avro through the registry-backed serde, ids cached, headers, metrics).

Both keep `window` sends waiting for their acknowledgement at once, as that many concurrent requests would; an
event's latency is from the call to its acknowledgement. The raw producer is a plain librdkafka program: no event
loop, a delivery callback per record, `poll` whenever the window is full."""

import asyncio
import functools
import threading
import time
from collections.abc import Awaitable, Callable
from io import BytesIO
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from confluent_kafka.schema_registry import AsyncSchemaRegistryClient
from fastavro import parse_schema, schemaless_writer

from agent_ops.events.avro import AvroSerde, load_schema
from agent_ops.events.catalog import Topic
from agent_ops.events.models import Event
from agent_ops.kafka.confluent_client import publish_tuning
from agent_ops.kafka.connection import connection_options
from agent_ops.kafka.producer import EventPublisher, create_producer
from agent_ops.settings import Settings
from tests.samples import sample_event

from .measure import Row, Run, alternate, row


def events_of(topic: Topic, count: int, prefix: str) -> list[Event]:
    """`count` events of the topic's first type, each with its own key (spread over the partitions)."""
    return [sample_event(topic, key=f"{prefix}-{n}") for n in range(count)]


async def drive(events: list[Event], window: int, send: Callable[[Event], Awaitable[Any]]) -> Run:
    """`send` every event, `window` callers at once; each event's latency from call to acknowledgement."""
    pending = iter(events)
    latencies: list[float] = []

    async def caller() -> None:
        # Callers taking the next event when theirs is acknowledged, rather than a task per event queued on a
        # semaphore: the driver's own cost stays small and alike for every path.
        for event in pending:
            started = time.perf_counter()
            await send(event)
            latencies.append(time.perf_counter() - started)

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(caller() for _ in range(window)))
    return Run(len(events), time.perf_counter() - started, latencies, cpu_seconds=time.process_time() - cpu)


RAW = "librdkafka producer"


def raw_producer(settings: Settings) -> Producer:
    """What a hand-written program would start: the service's durability and batching settings."""
    return Producer(connection_options(settings) | publish_tuning(settings))


class AsyncProducer:
    """The plain asyncio bridge of librdkafka's examples, for the HTTP baseline: a thread polls for delivery
    reports and resolves each record's future on the event loop."""

    def __init__(self, settings: Settings) -> None:
        self._producer = raw_producer(settings)
        self._polling = False
        self._poller = threading.Thread(target=self._poll, daemon=True)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._polling = True
        self._poller.start()

    def _poll(self) -> None:
        while self._polling:
            self._producer.poll(0.1)

    async def send(self, topic: str, value: bytes, key: bytes) -> "asyncio.Future[Message]":
        delivery: asyncio.Future[Message] = self._loop.create_future()

        def delivered(error: KafkaError | None, message: Message) -> None:
            if error is None:
                self._loop.call_soon_threadsafe(delivery.set_result, message)
            else:
                self._loop.call_soon_threadsafe(delivery.set_exception, KafkaException(error))

        self._producer.produce(topic, value, key, on_delivery=delivered)
        return delivery

    async def stop(self) -> None:
        await asyncio.to_thread(self._producer.flush)
        self._polling = False
        self._poller.join()


def drive_native(producer: Producer, topic: Topic, events: list[Event], window: int, plain: "RawAvro") -> Run:
    """The plain librdkafka loop: encode and produce every event, at most `window` unacknowledged, serving the
    delivery reports with `poll` (no thread, no event loop); each event's latency from produce to its report."""
    latencies: list[float] = []
    failures: list[KafkaError] = []
    in_flight = 0

    def delivered(started: float, error: KafkaError | None, _: Message) -> None:
        nonlocal in_flight
        in_flight -= 1
        if error is not None:
            failures.append(error)
        latencies.append(time.perf_counter() - started)

    started, cpu = time.perf_counter(), time.process_time()
    for event in events:
        while in_flight >= window:
            producer.poll(1.0)
        value = plain.encode(event)
        report = functools.partial(delivered, time.perf_counter())
        producer.produce(topic.name, value, topic.key_of(event), on_delivery=report)
        in_flight += 1
        producer.poll(0)
    producer.flush()
    if failures:
        raise KafkaException(failures[0])
    return Run(len(events), time.perf_counter() - started, latencies, cpu_seconds=time.process_time() - cpu)


class RawAvro:
    """Plain fastavro with a fixed Confluent wire-format header: what the serde does, minus everything else."""

    def __init__(self, header: bytes, event_type: type[Event]) -> None:
        self._header = header
        self._schema = parse_schema(load_schema(event_type))

    def encode(self, event: Event) -> bytes:
        out = BytesIO()
        out.write(self._header)
        schemaless_writer(out, self._schema, event.__dict__)
        return out.getvalue()


async def bench(settings: Settings, topic: Topic, count: int, window: int, repetitions: int) -> list[Row]:
    registry = AsyncSchemaRegistryClient({"url": settings.schema_registry_url})
    serde = AvroSerde(registry, settings.schema_subject_strategy, settings.schema_auto_register)
    service = create_producer(settings)
    raw = raw_producer(settings)
    await service.start()
    try:
        publisher = EventPublisher(service, serde, settings.publish_timeout_seconds, max(window, 1))
        first = sample_event(topic)
        await publisher.publish(first)  # registers the schema and caches its id, as the first request would
        encoded = await serde.serialize(topic, first)
        plain = RawAvro(encoded[:5], type(first))

        warm = events_of(topic, min(count, 1000), "warm")
        drive_native(raw, topic, warm, window, plain)
        await drive(warm, window, publisher.publish)

        async def raw_once() -> Run:
            return drive_native(raw, topic, events_of(topic, count, "raw"), window, plain)

        async def service_once() -> Run:
            return await drive(events_of(topic, count, "service"), window, publisher.publish)

        notes = {"record_bytes": len(encoded), "window": window, "events": count}
        raw_runs, service_runs = await alternate(repetitions, raw_once, service_once)
        return [
            row("publish", RAW, raw_runs, notes=notes),
            row(
                "publish",
                "service EventPublisher",
                service_runs,
                baseline=RAW,
                goal=0.9,
                notes=notes,
            ),
        ]
    finally:
        raw.flush()
        await service.stop()
        await registry.aclose()
