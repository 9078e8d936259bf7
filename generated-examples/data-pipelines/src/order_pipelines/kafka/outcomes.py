"""What handling one record came to, and the one step that writes it to Kafka: the events the handler emitted, or
the record to its dead-letter topic."""

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer, ConsumerRecord

from ..events.models import Event
from ..events.serde import EventSerde
from . import dead_letters
from .producer import send_event


@dataclass(frozen=True)
class Handled:
    event: Event
    emitted: Sequence[Event]


@dataclass(frozen=True)
class Failed:
    """Dead-letter material: the handler kept failing, or the bytes are not an event (poison)."""

    error: Exception
    attempts: int


Outcome = Handled | Failed


async def send_outcome(
    producer: AIOKafkaProducer, serde: EventSerde, record: ConsumerRecord[bytes, bytes], outcome: Outcome
) -> list["asyncio.Future[Any]"]:
    """Queue what `outcome` writes; returns the delivery futures. With a transactional producer it all commits or
    aborts with the transaction."""
    if isinstance(outcome, Failed):
        sent = [await dead_letters.send_dead_letter(producer, record, outcome.error, outcome.attempts)]
    else:
        sent = [await send_event(producer, serde, event, outcome.event) for event in outcome.emitted]
    return sent
