"""aiokafka against the broker version the template pins (Kafka 4.3.1, KRaft): the client features every
generated service relies on — produce, consume, commit, group rebalance — and transactions for exactly-once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import ProducerFenced


@pytest.fixture
async def topic(kafka_bootstrap: str) -> AsyncIterator[str]:
    name = f"proof-{uuid.uuid4().hex[:10]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=4, replication_factor=1)])
        yield name
    finally:
        await admin.close()


async def drain(consumer: AIOKafkaConsumer, count: int, within: float = 30) -> list[bytes]:
    values: list[bytes] = []
    async with asyncio.timeout(within):
        while len(values) < count:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                values += [record.value for record in records]
    return values


async def test_produce_consume_and_commit(kafka_bootstrap: str, topic: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for i in range(20):
            await producer.send_and_wait(topic, f"m{i}".encode(), key=f"k{i % 5}".encode())
    finally:
        await producer.stop()
    group = f"g-{uuid.uuid4().hex[:8]}"
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=kafka_bootstrap, group_id=group, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    try:
        assert sorted(await drain(consumer, 20)) == sorted(f"m{i}".encode() for i in range(20))
        await consumer.commit()
        partitions = [TopicPartition(topic, p) for p in range(4)]
        committed = {tp: await consumer.committed(tp) for tp in partitions}
        assert sum(committed.values()) == 20
    finally:
        await consumer.stop()


class Recorder(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self) -> None:
        self.assigned: set[TopicPartition] = set()
        self.revocations = 0

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self.revocations += 1
        self.assigned -= set(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.assigned = set(assigned)


async def test_a_second_member_triggers_a_rebalance_that_splits_the_partitions(
    kafka_bootstrap: str, topic: str
) -> None:
    group = f"g-{uuid.uuid4().hex[:8]}"
    first, second = Recorder(), Recorder()
    a = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=group)
    b = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=group)
    a.subscribe([topic], listener=first)
    await a.start()
    try:
        async with asyncio.timeout(30):
            while len(first.assigned) < 4:
                await a.getmany(timeout_ms=100)
        b.subscribe([topic], listener=second)
        await b.start()
        async with asyncio.timeout(60):
            while not (first.assigned and second.assigned and len(first.assigned) + len(second.assigned) == 4):
                await asyncio.gather(a.getmany(timeout_ms=100), b.getmany(timeout_ms=100))
        assert first.revocations >= 1
        assert not first.assigned & second.assigned
        assert len(first.assigned | second.assigned) == 4
    finally:
        await b.stop()
        await a.stop()


async def test_transactions_commit_abort_and_send_offsets(kafka_bootstrap: str, topic: str) -> None:
    group = f"g-{uuid.uuid4().hex[:8]}"
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, transactional_id=f"tx-{uuid.uuid4().hex[:8]}")
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send(topic, b"committed", partition=0)
            await producer.send_offsets_to_transaction({TopicPartition(topic, 1): 7}, group)
        await producer.begin_transaction()
        await producer.send(topic, b"aborted", partition=0)
        await producer.abort_transaction()
        async with producer.transaction():
            await producer.send(topic, b"after", partition=0)
    finally:
        await producer.stop()

    readers = {
        level: AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, isolation_level=level, auto_offset_reset="earliest")
        for level in ("read_committed", "read_uncommitted")
    }
    seen: dict[str, list[bytes]] = {}
    for level, reader in readers.items():
        await reader.start()
        try:
            reader.assign([TopicPartition(topic, 0)])
            seen[level] = await drain(reader, 2 if level == "read_committed" else 3)
        finally:
            await reader.stop()
    assert seen["read_committed"] == [b"committed", b"after"]
    assert b"aborted" in seen["read_uncommitted"]

    offsets = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=group)
    await offsets.start()
    try:
        assert await offsets.committed(TopicPartition(topic, 1)) == 7
    finally:
        await offsets.stop()


async def test_a_new_producer_with_the_same_transactional_id_fences_the_old_one(
    kafka_bootstrap: str, topic: str
) -> None:
    transactional_id = f"tx-{uuid.uuid4().hex[:8]}"
    zombie = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, transactional_id=transactional_id)
    successor = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, transactional_id=transactional_id)
    await zombie.start()
    try:
        await successor.start()  # InitProducerId bumps the epoch: the zombie's next transaction must fail
        try:
            with pytest.raises(ProducerFenced):
                async with zombie.transaction():
                    await zombie.send_and_wait(topic, b"from a zombie", partition=2)
            async with successor.transaction():
                await successor.send(topic, b"from the successor", partition=2)
        finally:
            await successor.stop()
    finally:
        await zombie.stop()
