"""What the service's own Kafka clients share: fencing a transactional id, reading a partition to its end, and
stopping a consumer while the broker is away."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from ..settings import Settings
from .connection import connection_options
from .producer import stop_producer

POLL_TIMEOUT_MS = 500
"""How long one poll waits for records before its caller looks again at where it stands (a stop, an end)."""


async def fenced(producer: AIOKafkaProducer, shutdown_timeout_seconds: float) -> AIOKafkaProducer:
    """`producer` (transactional) started, once every earlier producer of its transactional id is fenced: beginning
    a transaction waits for the producer id, whose initialisation fences them and completes their open
    transaction; committing it empty sends nothing. Stopped again if that fails, or is cancelled."""
    try:
        await producer.start()
        await producer.begin_transaction()
        await producer.commit_transaction()
    except BaseException:
        await stop_producer(producer, shutdown_timeout_seconds)
        raise
    return producer


def committed_reader(settings: Settings, **options: Any) -> AIOKafkaConsumer:
    """A consumer outside any group that sees only committed records, for reading partitions it assigns itself."""
    return AIOKafkaConsumer(
        **connection_options(settings), isolation_level="read_committed", enable_auto_commit=False, **options
    )


async def read_to_end(
    reader: AIOKafkaConsumer, tp: TopicPartition, start: int, end: int
) -> AsyncIterator[list[ConsumerRecord[bytes, bytes]]]:
    """The records of `tp` (assigned to `reader`) from `start` to `end`, excluded, in batches as they are fetched.
    The position passes markers and aborted records, which no batch holds."""
    # An explicit offset: seek_to_beginning() right after assign() may lose to assign()'s own reset to the end, and
    # the partition would read as empty.
    reader.seek(tp, start)
    while await reader.position(tp) < end:
        batch = (await reader.getmany(tp, timeout_ms=POLL_TIMEOUT_MS)).get(tp, [])
        yield [record for record in batch if record.offset < end]


async def stop_consumer(consumer: AIOKafkaConsumer) -> None:
    """Leave the group and close, also while the broker is away."""
    try:
        await consumer.stop()
    except asyncio.CancelledError:
        # aiokafka's fetcher re-raises the cancellation of its own pending fetches when the broker is unreachable,
        # before closing its connections. Only a cancellation aimed at us may propagate.
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
        await consumer._client.close()
