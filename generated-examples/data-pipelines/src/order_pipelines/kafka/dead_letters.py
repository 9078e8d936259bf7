"""The dead-letter topic: where a message goes when it cannot be processed, so its partition keeps flowing."""

import asyncio
from typing import Any

from aiokafka import AIOKafkaProducer, ConsumerRecord


def dead_letter_headers(
    record: ConsumerRecord[bytes, bytes], error: BaseException, attempts: int
) -> list[tuple[str, bytes]]:
    """The original headers plus where the message came from and why it failed."""
    return [
        *record.headers,
        ("dlq.original.topic", record.topic.encode()),
        ("dlq.original.partition", str(record.partition).encode()),
        ("dlq.original.offset", str(record.offset).encode()),
        ("dlq.error.type", type(error).__name__.encode()),
        ("dlq.error.message", str(error)[:1000].encode()),
        ("dlq.attempts", str(attempts).encode()),
    ]


async def send_dead_letter(
    producer: AIOKafkaProducer, record: ConsumerRecord[bytes, bytes], error: BaseException, attempts: int
) -> "asyncio.Future[Any]":
    """Queue the message on `<topic>.dlq`, same key and value; returns its delivery future. With a
    transactional producer the dead letter commits or aborts together with the message's offset."""
    delivery: asyncio.Future[Any] = await producer.send(
        f"{record.topic}.dlq", record.value, key=record.key, headers=dead_letter_headers(record, error, attempts)
    )
    return delivery
