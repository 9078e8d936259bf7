"""Records no well-behaved producer writes, written with librdkafka (a client the service does not use), for the
tests of the patterns' consumers: each must reach a dead-letter topic, and its consumer must go on. librdkafka
reads and writes here."""

import uuid
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

MAX_REQUEST_SIZE = 1_048_576
"""aiokafka's default max_request_size, which the patterns' producers keep."""

HOSTILE: dict[str, tuple[bytes | None, list[tuple[str, str | bytes | None]]]] = {
    "tombstone": (None, []),
    "empty value": (b"", []),
    "no magic byte": (b"plain text, no wire-format header", []),
    "unknown schema id": (b"\x00\x7f\xff\xff\xfe\x02ab", []),
    "truncated": (b"\x00\x00\x00", []),
    "garbage headers": (b"\xff\xfe\xfd", [("event-type", b"\xff\xfe"), ("correlation-id", None), ("\u00e9", b"\x80")]),
    # Too large to be written again beside the dead-letter headers: its dead letter goes without the value.
    "near the size limit": (b"\x00" + b"\x7f" * (MAX_REQUEST_SIZE - 150), []),
}
"""Each kind's value and headers, written with its kind as key; one more record has neither key nor value."""


def librdkafka(bootstrap: str) -> dict[str, Any]:
    """confluent-kafka's connection settings."""
    return {"bootstrap.servers": bootstrap}


def write_hostile(bootstrap: str, topic: str, partition: int) -> list[str]:
    """Write every hostile kind to `partition` of `topic`; the kinds written, in order ("null key and value" last)."""
    delivered: list[str] = []
    failed: list[str] = []

    def noted(kind: str) -> Callable[[Any, Any], None]:
        return lambda error, _message: (failed if error else delivered).append(kind)

    producer = Producer(librdkafka(bootstrap) | {"enable.idempotence": True, "message.max.bytes": 2 * MAX_REQUEST_SIZE})
    for kind, (value, headers) in HOSTILE.items():
        producer.produce(topic, value, key=kind.encode(), partition=partition, headers=headers, on_delivery=noted(kind))
    producer.produce(topic, None, key=None, partition=partition, on_delivery=noted("null key and value"))
    assert producer.flush(30) == 0
    assert not failed, failed
    return delivered


def dead_letters(bootstrap: str, topic: str, partitions: int) -> list[tuple[bytes | None, dict[str, bytes]]]:
    """Every committed record of `topic` as (key, headers), read by librdkafka to each partition's end."""
    consumer = Consumer(
        librdkafka(bootstrap)
        | {
            "group.id": f"test-dlq-{uuid.uuid4().hex}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
        }
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    found: list[tuple[bytes | None, dict[str, bytes]]] = []
    at_end: set[int] = set()
    try:
        while len(at_end) < partitions:
            for message in consumer.consume(num_messages=500, timeout=1.0):
                error = message.error()
                if error is not None and error.code() == KafkaError._PARTITION_EOF:
                    at_end.add(message.partition() or 0)
                elif error is not None:
                    raise RuntimeError(str(error))
                else:
                    at_end.discard(message.partition() or 0)
                    raw: list[tuple[str, Any]] = message.headers() or []  # type: ignore[assignment]  # a list here
                    headers = {name: bytes(value or b"") for name, value in raw}
                    found.append((message.key(), headers))
    finally:
        consumer.close()
    return found


def lag(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    """Each partition's end offset minus `group`'s committed offset (no commit counts as 0), as librdkafka reads
    them."""
    consumer = Consumer(librdkafka(bootstrap) | {"group.id": group, "enable.auto.commit": False})
    try:
        committed = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=30)
        behind: dict[int, int] = {}
        for tp in committed:
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, tp.partition), timeout=30)
            behind[tp.partition] = high - max(tp.offset, 0)
        return behind
    finally:
        consumer.close()
