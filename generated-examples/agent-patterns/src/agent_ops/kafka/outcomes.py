"""What handling one record came to, and the one step that writes it to Kafka: the events the handler emitted, or
the record to its dead-letter topic.

Emitted events are encoded while the record is handled (`encode`, inside the handler's retries), not when they are
written: an event the registry refuses, one larger than a producer sends, or a registry outage is then a failed
attempt, and in the end a dead letter of the input, never an error of the step that commits. That step only sends
bytes."""

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..events.catalog import topic_for
from ..events.models import Event
from ..events.serde import EventSerde
from ..observability import metrics
from . import dead_letters
from .hooks import Hooks
from .port import Producer, Record
from .producer import event_headers


class OutputTooLargeError(Exception):
    """An emitted event is larger than a producer sends: retrying it as it is will never succeed."""


@dataclass(frozen=True)
class Encoded:
    """An emitted event, ready to send as it is."""

    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


@dataclass(frozen=True)
class Handled:
    event: Event
    emitted: Sequence[Encoded]


@dataclass(frozen=True)
class Failed:
    """Dead-letter material: the handler kept failing, its output cannot be written, or the bytes are not an event
    (poison)."""

    error: Exception
    attempts: int


Outcome = Handled | Failed


async def encode(serde: EventSerde, cause: Event, emitted: Sequence[Event]) -> list[Encoded]:
    """`emitted` as the records that carry them (their correlation headers are those of the work in progress);
    raises what the serde raises, and `OutputTooLargeError` for a record no producer of the service sends."""
    encoded: list[Encoded] = []
    for event in emitted:
        topic = topic_for(event)
        key = topic.key_of(event)
        value = await serde.serialize(topic, event)
        headers = event_headers(event, cause)
        size = dead_letters.record_size(key, value, list(headers))
        if size > dead_letters.MAX_REQUEST_SIZE:
            raise OutputTooLargeError(
                f"{type(event).__name__} {event.event_id} is {size} bytes on {topic.name}, over the producer's "
                f"max_request_size of {dead_letters.MAX_REQUEST_SIZE}"
            )
        encoded.append(Encoded(topic.name, key, value, headers))
    return encoded


async def send_outcome(
    producer: Producer, hooks: Hooks, record: Record, outcome: Outcome
) -> list["asyncio.Future[Any]"]:
    """Queue what `outcome` writes, and what the patterns' `hooks` write with it; returns the delivery futures.
    With a transactional producer it all commits or aborts with the transaction."""
    noted = await hooks.on_processed(producer, record, "dead-lettered" if isinstance(outcome, Failed) else "handled")
    if isinstance(outcome, Failed):
        sent = [await dead_letters.send_dead_letter(producer, record, outcome.error, outcome.attempts)]
    else:
        sent = [await _send(producer, hooks, encoded) for encoded in outcome.emitted]
    return sent + noted


async def _send(producer: Producer, hooks: Hooks, encoded: Encoded) -> "asyncio.Future[Any]":
    # A copy: tracing instrumentation appends its context to the list it is given.
    delivery: asyncio.Future[Any] = await producer.send(
        encoded.topic, encoded.value, key=encoded.key, headers=list(encoded.headers)
    )
    metrics.sending(encoded.topic, delivery)
    return await hooks.on_published(producer, encoded.topic, encoded.key, encoded.headers, delivery)
