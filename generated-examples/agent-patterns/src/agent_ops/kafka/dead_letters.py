"""The dead-letter topic: where a message goes when it cannot be processed, so its partition keeps flowing.

A dead letter is written whatever the message was: a null value (a tombstone, which may have a null key too: a
record Kafka clients refuse to write) goes as an empty value with `dlq.original.value: null`; a value too large to
write again beside the `dlq.*` headers goes without it (`dlq.original.value: dropped`; the original stays at its
topic, partition and offset until retention)."""

import asyncio
from typing import Any

from .client import MAX_REQUEST_SIZE, record_size
from .port import Producer, Record

__all__ = [
    "MAX_REQUEST_SIZE",
    "ORIGINAL_VALUE",
    "dead_letter",
    "dead_letter_headers",
    "record_size",
    "send_dead_letter",
]

ORIGINAL_VALUE = "dlq.original.value"


def dead_letter_headers(record: Record, error: BaseException, attempts: int) -> list[tuple[str, bytes | None]]:
    """The original headers (a header's value may be null in Kafka) plus where the message came from and why it
    failed."""
    original: list[tuple[str, bytes | None]] = list(record.headers or ())
    return [
        *original,
        ("dlq.original.topic", record.topic.encode()),
        ("dlq.original.partition", str(record.partition).encode()),
        ("dlq.original.offset", str(record.offset).encode()),
        ("dlq.error.type", type(error).__name__.encode()),
        ("dlq.error.message", str(error)[:1000].encode("utf-8", "replace")),
        ("dlq.attempts", str(attempts).encode()),
    ]


def dead_letter(
    record: Record, error: BaseException, attempts: int
) -> tuple[bytes | None, bytes, list[tuple[str, bytes | None]]]:
    """The key, value and headers of `record`'s dead letter: always a record a producer accepts."""
    headers = dead_letter_headers(record, error, attempts)
    value = record.value
    if value is None:
        return record.key, b"", [*headers, (ORIGINAL_VALUE, b"null")]
    if record_size(record.key, value, headers) > MAX_REQUEST_SIZE:
        headers = [*headers, (ORIGINAL_VALUE, f"dropped: {len(value)} bytes".encode())]
        value = b""
        if record_size(record.key, value, headers) > MAX_REQUEST_SIZE:
            headers = headers[len(record.headers or ()) :]  # the original headers were the bulk of it
    return record.key, value, headers


async def send_dead_letter(
    producer: Producer, record: Record, error: BaseException, attempts: int
) -> "asyncio.Future[Any]":
    """Queue the message on `<topic>.dlq`, same key and value (see the module for null and oversized values);
    returns its delivery future. With a transactional producer the dead letter commits or aborts together with the
    message's offset."""
    key, value, headers = dead_letter(record, error, attempts)
    delivery: asyncio.Future[Any] = await producer.send(f"{record.topic}.dlq", value, key=key, headers=headers)
    return delivery
