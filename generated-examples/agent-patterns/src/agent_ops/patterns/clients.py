"""What the patterns' own Kafka clients share besides the service's (`kafka/clients.py`): their dead letters."""

import asyncio
from typing import Any

from ..kafka.client import MAX_REQUEST_SIZE, record_size
from ..kafka.port import Producer, Record


def dead_letter_headers(
    record: Record, error: BaseException, extra: tuple[tuple[str, bytes], ...] = ()
) -> list[tuple[str, bytes]]:
    """The record's own headers (a header without a value kept, empty), where it came from and why it failed."""
    return [
        *((name, value if value is not None else b"") for name, value in record.headers or ()),
        ("dlq.original.topic", record.topic.encode()),
        ("dlq.original.partition", str(record.partition).encode()),
        ("dlq.original.offset", str(record.offset).encode()),
        *extra,
        ("dlq.error.type", type(error).__name__.encode()),
        ("dlq.error.message", str(error)[:1000].encode()),
    ]


async def send_dead_letter(
    producer: Producer,
    topic: str,
    record: Record,
    error: BaseException,
    extra: tuple[tuple[str, bytes], ...] = (),
) -> "asyncio.Future[Any]":
    """Queue `record` on `topic` as it came, same key and value, with `dead_letter_headers`; its delivery future.

    A record with neither key nor value (Kafka stores one; clients refuse to send one) becomes an empty value and a
    `dlq.original.null` header saying so. A value too large to write again beside those headers goes without it
    (`dlq.original.value: dropped: N bytes`; the original stays at its topic, partition and offset until retention)."""
    headers = dead_letter_headers(record, error, extra)
    value: bytes | None = record.value
    if record.key is None and value is None:
        value = b""
        headers.append(("dlq.original.null", b"key,value"))
    # The client refuses a record larger than it sends, and in a transaction that aborts everything else with it.
    if value and record_size(record.key, value, headers) > MAX_REQUEST_SIZE:
        headers.append(("dlq.original.value", f"dropped: {len(value)} bytes".encode()))
        value = b""
    delivery: asyncio.Future[Any] = await producer.send(topic, value, key=record.key, headers=headers)
    return delivery
