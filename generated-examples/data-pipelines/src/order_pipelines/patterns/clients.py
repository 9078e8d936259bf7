"""What the patterns' own Kafka clients share."""

import asyncio

from aiokafka import AIOKafkaConsumer


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
