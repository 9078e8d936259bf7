"""How the at-least-once runner scales out: events per second of 1, 2 and 4 worker processes
(`python -m agent_tasks worker`) sharing one consumer group on a topic of `partitions` partitions.

The topic is grown to `partitions` if it has fewer (Kafka cannot shrink it back: use a stack of the bench's own).
A backlog is written first (a burst sent while the workers run would measure the sender, one process, instead);
then the workers start on it, and the clock starts once every one of them owns partitions: the rate is what the
group had left to commit then, over the time until it committed all of it. (A backlog too small to outlast the
workers' start is timed from their start instead, rebalances included.)"""

import asyncio
import os
import re
import sys
import time
import urllib.request
import uuid
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions
from confluent_kafka.schema_registry import AsyncSchemaRegistryClient

from agent_tasks.events.avro import AvroSerde
from agent_tasks.events.catalog import Topic
from agent_tasks.kafka.client import plain_producer
from agent_tasks.kafka.connection import connection_options
from agent_tasks.kafka.producer import event_headers
from agent_tasks.settings import Settings

from .consumers import end_offsets
from .ingest import free_port
from .measure import Row, Run, row
from .producer import events_of

ASSIGNED = re.compile(r"^messaging_kafka_consumer_assigned_partitions\{[^}]*\} (\S+)$", re.MULTILINE)
TIMEOUT_SECONDS = 300.0
PROJECT = Path(__file__).resolve().parents[2]


async def grow(settings: Settings, topic: Topic, partitions: int) -> None:
    if len(await end_offsets(settings, topic)) >= partitions:
        return
    admin = AIOKafkaAdminClient(**connection_options(settings))
    await admin.start()
    try:
        await admin.create_partitions({topic.name: NewPartitions(partitions)})
    finally:
        await admin.close()
    for _ in range(150):  # the new partitions show in the metadata within seconds
        if len(await end_offsets(settings, topic)) >= partitions:
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{topic.name} did not grow to {partitions} partitions")


def owned(port: int) -> int:
    """Partitions a worker owns, from its metrics."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return 0
    return int(sum(float(value) for value in ASSIGNED.findall(text)))


async def partition_ends(settings: Settings, topic: Topic) -> dict[TopicPartition, int]:
    """The topic's end offsets, by aiokafka's partitions (this bench's own client)."""
    return {TopicPartition(*partition): offset for partition, offset in (await end_offsets(settings, topic)).items()}


async def committed(settings: Settings, group: str, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
    reader = AIOKafkaConsumer(**connection_options(settings), group_id=group, enable_auto_commit=False)
    await reader.start()
    try:
        reader.assign(partitions)
        return {tp: (await reader.committed(tp)) or 0 for tp in partitions}
    finally:
        await reader.stop()


async def once(settings: Settings, serde: AvroSerde, topic: Topic, workers: int, count: int) -> Run:
    group = f"bench-workers-{workers}-{uuid.uuid4().hex[:8]}"
    start = await partition_ends(settings, topic)
    setter = AIOKafkaConsumer(**connection_options(settings), group_id=group, enable_auto_commit=False)
    await setter.start()
    setter.assign(list(start))
    await setter.commit(start)
    await setter.stop()
    producer = plain_producer(settings, idempotent=True)
    await producer.start()
    try:
        deliveries = []
        for event in events_of(topic, count, f"workers-{workers}"):
            value, headers = await serde.serialize(topic, event), event_headers(event)
            deliveries.append(await producer.send(topic.name, value, key=topic.key_of(event), headers=headers))
        await asyncio.gather(*deliveries)
    finally:
        await producer.stop()
    end = await partition_ends(settings, topic)
    ports = [free_port() for _ in range(workers)]
    env = os.environ | {
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "SCHEMA_REGISTRY_URL": settings.schema_registry_url,
        "KAFKA_CONSUMER_GROUP": group,
        "LOG_LEVEL": "WARNING",
    }
    launched = time.perf_counter()
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", "agent_tasks", "worker", env=env | {"METRICS_PORT": str(port)}, cwd=PROJECT
        )
        for port in ports
    ]
    try:
        deadline = time.monotonic() + 120
        while not (all(owned(port) for port in ports) and sum(owned(port) for port in ports) == len(start)):
            if time.monotonic() > deadline or any(process.returncode is not None for process in processes):
                raise RuntimeError(f"{workers} workers did not share the {len(start)} partitions")
            await asyncio.sleep(0.05)
        started = time.perf_counter()
        done = await committed(settings, group, list(end))
        left = sum(offset - min(done[tp], offset) for tp, offset in end.items())
        if left == 0:
            left, started = count, launched
        while True:
            done = await committed(settings, group, list(end))
            if all(done[tp] >= offset for tp, offset in end.items()):
                return Run(left, time.perf_counter() - started)
            if time.perf_counter() - started > TIMEOUT_SECONDS:
                raise RuntimeError(f"{workers} workers did not finish {count} events")
            await asyncio.sleep(0.05)
    finally:
        for process in processes:
            process.terminate()
        await asyncio.gather(*(process.wait() for process in processes))


async def bench(settings: Settings, topic: Topic, counts: list[int], partitions: int, events: int) -> list[Row]:
    await grow(settings, topic, partitions)
    registry = AsyncSchemaRegistryClient({"url": settings.schema_registry_url})
    serde = AvroSerde(registry, settings.schema_subject_strategy, settings.schema_auto_register)
    try:
        rows = []
        for workers in counts:
            run = await once(settings, serde, topic, workers, events)
            notes = {"partitions": partitions, "backlog": events, "left_at_start": run.events, "workers": workers}
            rows.append(row("worker processes", f"{workers} worker{'s' if workers > 1 else ''}", [run], notes=notes))
        return rows
    finally:
        await registry.aclose()
