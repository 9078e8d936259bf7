"""Readiness: can the service reach a broker now, and has its consumer joined its group? And how far behind
the end of each partition it is."""

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.protocol.metadata import MetadataRequest


class Consumer(Protocol):
    """What readiness asks of the consumer runner; a service that consumes nothing has none."""

    joined: asyncio.Event

    @property
    def running(self) -> bool: ...

    async def lag(self, timeout_seconds: float) -> dict[str, int]: ...


@dataclass(frozen=True)
class Readiness:
    broker: bool
    consumer: bool
    lag: dict[str, int] = field(default_factory=dict)
    """Records not yet processed per assigned partition, `topic[partition]`: for dashboards and autoscaling."""

    @property
    def ready(self) -> bool:
        return self.broker and self.consumer


async def a_broker_answers(client: Any, timeout_seconds: float) -> bool:
    """Whether any broker the client knows answers a metadata request within `timeout_seconds`: a real round trip,
    since cached metadata would say "up" through an outage. It asks for no topic, so the answer is the brokers alone
    however many topics the cluster holds, and it asks every broker at once, so that one restarting in a roll (or
    hung) fails no probe while another answers."""
    asks = [
        asyncio.ensure_future(client.send(broker.nodeId, MetadataRequest([]))) for broker in client.cluster.brokers()
    ]
    try:
        for ask in asyncio.as_completed(asks, timeout=timeout_seconds):
            with contextlib.suppress(KafkaError, OSError):
                await ask
                return True
        return False
    except TimeoutError:
        return False
    finally:
        for ask in asks:
            ask.cancel()
        await asyncio.gather(*asks, return_exceptions=True)


async def check_readiness(producer: AIOKafkaProducer, runner: Consumer | None, timeout_seconds: float) -> Readiness:
    broker = await a_broker_answers(producer.client, timeout_seconds)
    if runner is None:
        return Readiness(broker=broker, consumer=True)
    consumer = runner.running and runner.joined.is_set()
    return Readiness(broker=broker, consumer=consumer, lag=await runner.lag(timeout_seconds))
