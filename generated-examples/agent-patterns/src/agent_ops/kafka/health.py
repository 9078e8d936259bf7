"""Readiness: can the service reach a broker now, and has its consumer joined its group? And how far behind
the end of each partition it is."""

import asyncio
from dataclasses import dataclass, field
from typing import Protocol

from .client import broker_answers
from .port import Producer


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


async def check_readiness(producer: Producer, runner: Consumer | None, timeout_seconds: float) -> Readiness:
    broker = await broker_answers(producer, timeout_seconds)
    if runner is None:
        return Readiness(broker=broker, consumer=True)
    consumer = runner.running and runner.joined.is_set()
    return Readiness(broker=broker, consumer=consumer, lag=await runner.lag(timeout_seconds))
