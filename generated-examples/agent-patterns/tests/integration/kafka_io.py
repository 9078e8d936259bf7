"""Direct broker access for tests: raw records in, a topic's records out."""

import asyncio
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic


async def produce_raw(bootstrap: str, topic: str, value: bytes, key: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def find_record(bootstrap: str, topic: str, key: bytes, within: float = 30) -> ConsumerRecord[bytes, bytes]:
    """The first record on `topic` with `key`, reading every partition from the beginning."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"probe-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        async with asyncio.timeout(within):
            while True:
                batches = await consumer.getmany(timeout_ms=200)
                for records in batches.values():
                    for record in records:
                        if record.key == key:
                            return record
    finally:
        await consumer.stop()


async def committed_offsets(bootstrap: str, group: str, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        return {tp: (await consumer.committed(tp)) or 0 for tp in partitions}
    finally:
        await consumer.stop()


async def read_topic(
    bootstrap: str, topic: str, partitions: int, isolation_level: str = "read_uncommitted", within: float = 15
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record on `topic` up to its current end, as a reader with `isolation_level` sees them."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        isolation_level=isolation_level,
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    try:
        assigned = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        ends = await consumer.end_offsets(assigned)
        records: list[ConsumerRecord[bytes, bytes]] = []
        async with asyncio.timeout(within):
            while any([await consumer.position(tp) < ends[tp] for tp in assigned]):
                for batch in (await consumer.getmany(timeout_ms=200)).values():
                    records.extend(batch)
        return records
    finally:
        await consumer.stop()


async def start_group_at_the_end(bootstrap: str, group: str, topic: str, partitions: int) -> None:
    """Commit `group`'s offsets at the current end of `topic`: its first member starts after whatever earlier tests
    and earlier runs on the same stack wrote there, not at the earliest record, so what it handles is the test's."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        assigned = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(assigned)
        await consumer.commit(dict(await consumer.end_offsets(assigned)))
    finally:
        await consumer.stop()


async def end_offsets(bootstrap: str, topic: str, partitions: int) -> dict[TopicPartition, int]:
    """The offset the next record of each partition of `topic` will get."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        return dict(await consumer.end_offsets([TopicPartition(topic, p) for p in range(partitions)]))
    finally:
        await consumer.stop()


async def records_since(
    bootstrap: str, starts: dict[TopicPartition, int], within: float = 15
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every committed record from `starts` to each partition's current end."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        isolation_level="read_committed",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    try:
        consumer.assign(list(starts))
        for tp, offset in starts.items():
            consumer.seek(tp, offset)
        ends = await consumer.end_offsets(list(starts))
        records: list[ConsumerRecord[bytes, bytes]] = []
        async with asyncio.timeout(within):
            while any([await consumer.position(tp) < ends[tp] for tp in starts]):
                for batch in (await consumer.getmany(timeout_ms=200)).values():
                    records.extend(batch)
        return records
    finally:
        await consumer.stop()


async def create_topics(bootstrap: str, *topics: NewTopic) -> None:
    """Create a test's own topics."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(list(topics))
    finally:
        await admin.close()
