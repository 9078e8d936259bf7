"""Records no well-behaved producer writes, on a consumed topic of the running service: each goes to the dead-letter
topic with the error in its headers, the valid events around it are processed, and the runner keeps running.

The records are written and the dead letters read with librdkafka (confluent-kafka), not with the service's client."""

import asyncio
import struct
import uuid
from dataclasses import dataclass
from typing import Any, cast

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, Producer, TopicPartition

from agent_tasks.events.catalog import CONSUMED_TOPICS
from tests.samples import ROUTES, sample_event, unique_key

from .service import eventually, running_service, service_settings

pytestmark = pytest.mark.integration

TOPIC = CONSUMED_TOPICS[0]
ROUTE = ROUTES[TOPIC.name]
MAX_REQUEST_SIZE = 1_048_576
"""The producers' max_request_size: a dead letter that large with its headers cannot be written as it is."""

Headers = list[tuple[str, bytes | None]]


@dataclass(frozen=True)
class Hostile:
    name: str
    key: bytes | None
    value: bytes | None
    headers: Headers


def librdkafka(bootstrap: str) -> dict[str, Any]:
    return {"bootstrap.servers": bootstrap}


def hostile_records(valid_value: bytes) -> list[Hostile]:
    """Every kind of record the runner cannot decode; `valid_value` is a real event's bytes."""
    garbage_headers: Headers = [
        ("correlation-id", b"\xff\xfe not utf-8"),
        ("event-id", b"\xc3\x28"),
        ("traceparent", b"\xff\x00\x01"),
        ("causation-id", None),
    ]

    def key() -> bytes:
        return f"hostile-{uuid.uuid4().hex}".encode()

    return [
        Hostile("tombstone", key(), None, []),
        Hostile("null key and value", None, None, []),
        Hostile("empty value", key(), b"", []),
        Hostile("no magic byte", key(), b"plain text, not Avro", []),
        Hostile("unknown schema id", key(), b"\x00" + struct.pack(">I", 2**31 - 1) + b"\x02", []),
        Hostile("truncated body", key(), valid_value[: max(6, len(valid_value) // 2)], []),
        Hostile("a value near the size limit", key(), b"\x00" + b"\x7f" * (MAX_REQUEST_SIZE - 300), []),
        Hostile("headers not UTF-8 or null", key(), b"\x01\x02\x03", garbage_headers),
        Hostile("no headers, null key", None, b"\x00\x00", []),
    ]


def write(bootstrap: str, partition: int, records: list[Hostile]) -> list[tuple[int, int]]:
    """Write `records` to `partition` of the topic, in order; their (partition, offset)s."""
    producer = Producer({**librdkafka(bootstrap), "message.max.bytes": 2 * MAX_REQUEST_SIZE, "acks": "all"})
    written: list[tuple[int, int]] = []
    failures: list[Any] = []

    def delivered(error: Any, message: Any) -> None:
        if error is not None:
            failures.append(error)
        else:
            written.append((message.partition(), message.offset()))

    for record in records:
        producer.produce(
            TOPIC.name,
            value=record.value,
            key=record.key,
            partition=partition,
            headers=list[tuple[str, str | bytes | None]](record.headers),
            on_delivery=delivered,
        )
        producer.flush(30)  # one at a time: the offsets come back in the records' order
    assert not failures, failures
    return written


def read_at(bootstrap: str, partition: int, offset: int) -> bytes:
    consumer = Consumer({**librdkafka(bootstrap), "group.id": f"probe-{uuid.uuid4().hex}", "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(TOPIC.name, partition, offset)])
        for _ in range(300):
            message = consumer.poll(0.1)
            if message is not None and message.error() is None:
                value = message.value()
                assert value is not None
                return value
        raise AssertionError(f"{TOPIC.name}[{partition}]@{offset} not readable")
    finally:
        consumer.close()


def headers_of(message: Message) -> Headers:
    return cast(Headers, message.headers() or [])


def dead_letter_consumer(bootstrap: str) -> Consumer:
    return Consumer(
        {
            **librdkafka(bootstrap),
            "group.id": f"probe-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "fetch.max.bytes": 4 * MAX_REQUEST_SIZE,
        }
    )


def dead_letter_ends(bootstrap: str) -> dict[int, int]:
    """The end of each partition of the topic's dead-letter topic now: where this test's dead letters start, after
    whatever earlier runs on the same stack left."""
    consumer = dead_letter_consumer(bootstrap)
    try:
        metadata = consumer.list_topics(TOPIC.dead_letter, timeout=10).topics[TOPIC.dead_letter]
        partitions = [TopicPartition(TOPIC.dead_letter, p) for p in metadata.partitions]
        return {tp.partition: consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in partitions}
    finally:
        consumer.close()


def dead_letters(bootstrap: str, since: dict[int, int]) -> dict[tuple[int, int], Message]:
    """Every committed dead letter of the topic from `since` up to its current end, by the (partition, offset) of
    the record it stands for."""
    consumer = dead_letter_consumer(bootstrap)
    try:
        metadata = consumer.list_topics(TOPIC.dead_letter, timeout=10).topics[TOPIC.dead_letter]
        partitions = [TopicPartition(TOPIC.dead_letter, p) for p in metadata.partitions]
        ends = {tp.partition: consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in partitions}
        consumer.assign(
            [TopicPartition(tp.topic, tp.partition, since.get(tp.partition, OFFSET_BEGINNING)) for tp in partitions]
        )
        found: dict[tuple[int, int], Message] = {}
        for _ in range(600):
            read_to = {tp.partition: tp.offset for tp in consumer.position(partitions)}
            if all(ends[p] == since.get(p, 0) or read_to[p] >= ends[p] for p in ends):
                break
            message = consumer.poll(0.1)
            if message is None or message.error() is not None:
                continue
            headers = {name: value or b"" for name, value in headers_of(message)}
            if headers.get("dlq.original.topic") == TOPIC.name.encode():
                where = (int(headers["dlq.original.partition"].decode()), int(headers["dlq.original.offset"].decode()))
                found[where] = message
        return found
    finally:
        consumer.close()


async def test_every_hostile_record_is_dead_lettered_between_processed_events_and_the_runner_keeps_running(
    kafka_bootstrap: str, unique: str
) -> None:
    async with running_service(service_settings(kafka_bootstrap, unique)) as client:

        async def post(key: str) -> tuple[str, int, int]:
            event = sample_event(TOPIC, key=key)
            response = await client.post(ROUTE, json=event.model_dump(mode="json"))
            assert response.status_code == 202, response.text
            return str(event.event_id), response.json()["partition"], response.json()["offset"]

        first_key = unique_key(TOPIC)
        _, partition, offset = await post(first_key)
        valid_value = await asyncio.to_thread(read_at, kafka_bootstrap, partition, offset)
        since = await asyncio.to_thread(dead_letter_ends, kafka_bootstrap)
        kinds = hostile_records(valid_value)

        # Each hostile record right between two valid events of one key, so on one partition: the event after it is
        # handled only if the runner got past it.
        written: dict[str, tuple[int, int]] = {}
        last_events: dict[str, str] = {}
        for kind in kinds:
            key = unique_key(TOPIC)
            _, partition, _ = await post(key)
            [written[kind.name]] = await asyncio.to_thread(write, kafka_bootstrap, partition, [kind])
            last_events[key], _, _ = await post(key)

        async def all_valid_events_handled() -> bool:
            for key, event_id in last_events.items():
                seen = await client.get(f"{ROUTE}/{key}")
                if seen.status_code != 200 or seen.json()["event_id"] != event_id:
                    return False
            return True

        await eventually(all_valid_events_handled, within=90)

        found: dict[tuple[int, int], Message] = {}

        async def all_dead_lettered() -> bool:
            found.update(await asyncio.to_thread(dead_letters, kafka_bootstrap, since))
            return all(where in found for where in written.values())

        await eventually(all_dead_lettered, within=60, interval=0.5)
        assert (await client.get("/health/live")).status_code == 200, "the consumer runner stopped"

    for kind in kinds:
        dead = found[written[kind.name]]
        headers = {name: value or b"" for name, value in headers_of(dead)}
        assert headers["dlq.error.type"], kind.name
        assert headers["dlq.error.message"], kind.name
        assert headers["dlq.attempts"] == b"0", kind.name  # not an event: the handler never saw it
        assert dead.key() == kind.key, kind.name
        if kind.value is None:
            assert dead.value() in (None, b""), kind.name
            assert headers["dlq.original.value"] == b"null", kind.name
        elif len(kind.value) > MAX_REQUEST_SIZE // 2:
            assert dead.value() in (None, b""), kind.name
            assert headers["dlq.original.value"].startswith(b"dropped"), kind.name
        else:
            assert (dead.value() or b"") == kind.value, kind.name
        # The original headers travel with the dead letter, byte for byte, a null one as null.
        assert [(name, value) for name, value in headers_of(dead) if not name.startswith("dlq.")] == kind.headers
