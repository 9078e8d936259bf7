"""Readiness: can the service reach a broker now, and has its consumer joined its group?"""

import asyncio
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from .consumer import CommitAfterProcessing


@dataclass(frozen=True)
class Readiness:
    broker: bool
    consumer: bool

    @property
    def ready(self) -> bool:
        return self.broker and self.consumer


async def check_readiness(
    producer: AIOKafkaProducer, runner: CommitAfterProcessing | None, timeout_seconds: float
) -> Readiness:
    try:
        # A real metadata round trip: cached cluster metadata would say "up" through an outage.
        await asyncio.wait_for(producer.client.fetch_all_metadata(), timeout_seconds)
        broker = True
    except (KafkaError, TimeoutError, OSError):
        broker = False
    consumer = runner is None or (runner.running and runner.joined.is_set())
    return Readiness(broker=broker, consumer=consumer)
