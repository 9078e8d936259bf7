"""librdkafka (confluent-kafka) against the broker version the template pins: what the confluent-kafka answer relies
on, proven at the client level. The broker finalizes transactions v2, the consumer group protocol and share groups;
under the consumer protocol (KIP-848) a joining member takes partitions from the others without revoking the rest;
and a transaction's offsets name the member that read them (KIP-447), so a member the group moved on from cannot
commit them, whatever its transactional id."""

from __future__ import annotations

import re
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from confluent_kafka import Consumer, ConsumerGroupType, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from tools.bench.layers import KAFKA_TOOLS
from tools.stack import kafka_stack

FEATURE = re.compile(r"Feature: (?P<name>\S+)\s.*FinalizedVersionLevel: (?P<level>\S+)")


def finalized_features(bootstrap: str) -> dict[str, str]:
    """The cluster's finalized feature levels, as Kafka's own `kafka-features.sh describe` prints them."""
    libs = kafka_stack.resolve_jars("kafka-tools-4.3.1", [KAFKA_TOOLS])
    command = [kafka_stack.find_java(), "-cp", f"{libs}/*", "org.apache.kafka.tools.FeatureCommand"]
    out = subprocess.run([*command, "--bootstrap-server", bootstrap, "describe"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return {match["name"]: match["level"] for match in FEATURE.finditer(out.stdout)}


def test_the_stack_finalizes_transactions_v2_the_consumer_group_protocol_and_share_groups(
    kafka_bootstrap: str,
) -> None:
    features = finalized_features(kafka_bootstrap)
    assert int(features["transaction.version"]) >= 2, features  # KIP-890: the broker verifies each transaction
    assert int(features["group.version"]) >= 1, features  # KIP-848: the consumer group protocol
    assert int(features["share.version"]) >= 1, features  # KIP-932: share groups


@pytest.fixture
def topics(kafka_bootstrap: str) -> Callable[..., list[str]]:
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})

    def create(*partitions: int) -> list[str]:
        names = [f"proof-{uuid.uuid4().hex[:10]}" for _ in partitions]
        futures = admin.create_topics([NewTopic(n, p, 1) for n, p in zip(names, partitions, strict=True)])
        for future in futures.values():
            future.result(timeout=30)
        return names

    return create


def group_member(bootstrap: str, group: str, **config: object) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "group.protocol": "consumer",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            **config,
        }
    )


def poll_until(condition: Callable[[], bool], *consumers: Consumer, within: float = 60) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "the group did not settle"
        for consumer in consumers:
            consumer.poll(0.2)


@pytest.fixture
def closing() -> Iterator[list[Consumer]]:
    consumers: list[Consumer] = []
    yield consumers
    for consumer in consumers:
        consumer.close()


def test_a_joining_member_takes_partitions_without_revoking_the_others(
    kafka_bootstrap: str, topics: Callable[..., list[str]], closing: list[Consumer]
) -> None:
    (topic,) = topics(4)
    group = f"g-{uuid.uuid4().hex[:8]}"
    events: list[tuple[str, str, set[int]]] = []

    def member(name: str) -> Consumer:
        consumer = group_member(kafka_bootstrap, group)
        closing.append(consumer)
        consumer.subscribe(
            [topic],
            on_assign=lambda _, moved: events.append((name, "assigned", {tp.partition for tp in moved})),
            on_revoke=lambda _, moved: events.append((name, "revoked", {tp.partition for tp in moved})),
        )
        return consumer

    first = member("first")
    poll_until(lambda: len(first.assignment()) == 4, first)
    second = member("second")
    poll_until(lambda: bool(second.assignment()) and len(first.assignment()) == 2, first, second)

    kept = {tp.partition for tp in first.assignment()}
    taken = {tp.partition for tp in second.assignment()}
    assert kept | taken == {0, 1, 2, 3}
    assert not kept & taken
    # Told only of what moved: the kept partitions were never revoked, so their processing never stopped.
    revoked = [partitions for name, kind, partitions in events if name == "first" and kind == "revoked"]
    assert revoked == [taken], events
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})  # kept: a dropped client never answers
    description = admin.describe_consumer_groups([group])[group].result(timeout=30)
    assert description.type == ConsumerGroupType.CONSUMER


def test_a_member_the_group_moved_on_from_cannot_commit_its_transaction(
    kafka_bootstrap: str, topics: Callable[..., list[str]], closing: list[Consumer]
) -> None:
    source, sink = topics(2, 1)
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for i in range(10):
        producer.produce(source, f"v{i}".encode(), key=str(i).encode())
    assert producer.flush(30) == 0
    group = f"g-{uuid.uuid4().hex[:8]}"
    # The zombie: it read everything, then stops polling (a stuck handler) past its max.poll.interval.ms.
    zombie = group_member(kafka_bootstrap, group, **{"max.poll.interval.ms": 7000})
    closing.append(zombie)
    zombie.subscribe([source])
    read: list[Message] = []
    deadline = time.monotonic() + 60
    while len(read) < 10:
        assert time.monotonic() < deadline
        read += [message for message in zombie.consume(10, 0.5) if message.error() is None]
    zombies_group = zombie.consumer_group_metadata()
    transactional = Producer({"bootstrap.servers": kafka_bootstrap, "transactional.id": f"tx-{uuid.uuid4().hex}"})
    transactional.init_transactions(30)
    transactional.begin_transaction()
    for message in read:
        transactional.produce(sink, message.value())
    ends: dict[int, int] = {}
    for message in read:
        partition, offset = message.partition(), message.offset()
        assert partition is not None
        assert offset is not None
        ends[partition] = offset + 1
    offsets = [TopicPartition(source, partition, end) for partition, end in ends.items()]

    successor = group_member(kafka_bootstrap, group)
    closing.append(successor)
    successor.subscribe([source])
    poll_until(lambda: len(successor.assignment()) == 2, successor)

    with pytest.raises(KafkaException) as refused:
        commit(transactional, offsets, zombies_group)
    error: KafkaError = refused.value.args[0]
    assert error.txn_requires_abort(), error
    assert error.code() in {KafkaError.UNKNOWN_MEMBER_ID, KafkaError.FENCED_MEMBER_EPOCH, KafkaError.ILLEGAL_GENERATION}
    transactional.abort_transaction(30)

    committed = successor.committed([TopicPartition(source, p) for p in (0, 1)], 30)
    assert all(tp.offset < 0 for tp in committed), "the zombie's offsets were committed"
    # The records were written, and their transaction aborted: a read_committed reader never sees them.
    assert len(sink_values(kafka_bootstrap, sink, "read_uncommitted", closing)) == 10
    assert sink_values(kafka_bootstrap, sink, "read_committed", closing) == []


def commit(producer: Producer, offsets: list[TopicPartition], group: object) -> None:
    producer.send_offsets_to_transaction(offsets, group, 30)
    producer.commit_transaction(30)


def sink_values(bootstrap: str, topic: str, isolation: str, closing: list[Consumer]) -> list[bytes | None]:
    """Every record of `topic`'s one partition a reader at `isolation` gets, until it gets none for 3 s."""
    reader = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"r-{uuid.uuid4().hex}", "isolation.level": isolation}
    )
    closing.append(reader)
    reader.assign([TopicPartition(topic, 0, 0)])
    values: list[bytes | None] = []
    while batch := [message for message in reader.consume(100, 3) if message.error() is None]:
        values += [message.value() for message in batch]
    return values
