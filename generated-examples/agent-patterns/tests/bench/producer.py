"""Publishing: a raw aiokafka producer with the service's settings, sending records encoded by plain
fastavro, next to the service's `EventPublisher` (Avro through the registry-backed serde, ids cached, headers, metrics).

Both keep `window` sends waiting for their acknowledgement at once, as that many concurrent requests would; an
event's latency is from the call to its acknowledgement."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from io import BytesIO
from typing import Any

from aiokafka import AIOKafkaProducer
from confluent_kafka.schema_registry import AsyncSchemaRegistryClient
from fastavro import parse_schema, schemaless_writer

from agent_ops.events.avro import AvroSerde, load_schema
from agent_ops.events.catalog import Topic
from agent_ops.events.models import Event
from agent_ops.kafka.aiokafka_client import BATCH_BYTES
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


RAW = "aiokafka producer"


def raw_producer(settings: Settings) -> AIOKafkaProducer:
    """What a hand-written service would start: the service's durability and batching settings."""
    return AIOKafkaProducer(
        **connection_options(settings),
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        max_batch_size=BATCH_BYTES,
        request_timeout_ms=int(settings.publish_timeout_seconds * 1000),
    )


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
    await raw.start()
    try:
        publisher = EventPublisher(service, serde, settings.publish_timeout_seconds, max(window, 1))
        first = sample_event(topic)
        await publisher.publish(first)  # registers the schema and caches its id, as the first request would
        encoded = await serde.serialize(topic, first)
        plain = RawAvro(encoded[:5], type(first))

        async def send_raw(event: Event) -> None:
            delivery = await raw.send(topic.name, plain.encode(event), key=topic.key_of(event))
            await delivery

        warm = events_of(topic, min(count, 1000), "warm")
        await drive(warm, window, send_raw)
        await drive(warm, window, publisher.publish)

        async def raw_once() -> Run:
            return await drive(events_of(topic, count, "raw"), window, send_raw)

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
        await raw.stop()
        await service.stop()
        await registry.aclose()
