"""The runner's decisions for one record, without a broker: retries, dead letters, and a registry outage."""

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from aiokafka import ConsumerRecord

from order_pipelines.events.catalog import CONSUMED_TOPICS, Topic
from order_pipelines.events.models import Event
from order_pipelines.events.serde import DeserializationError, RegistryUnavailableError, SchemaRefusedError
from order_pipelines.kafka import dead_letters
from order_pipelines.kafka.consumer import ConsumerRunner, Failed, Handled
from order_pipelines.kafka.outcomes import OutputTooLargeError
from order_pipelines.settings import Settings
from tests.samples import sample_event

TOPIC = CONSUMED_TOPICS[0]
SETTINGS = Settings(handler_max_attempts=3, handler_retry_backoff_seconds=0.001)


class FlakySerde:
    """Decodes to `event` after `outages` registry outages; `poison` bytes never decode."""

    def __init__(self, event: Event, outages: int = 0) -> None:
        self.event = event
        self.outages = outages

    async def serialize(self, topic: Topic, event: Event) -> bytes:
        raise NotImplementedError

    async def deserialize(self, topic: Topic, data: bytes) -> Event:
        if data == b"poison":
            raise DeserializationError("not an event")
        if self.outages:
            self.outages -= 1
            raise RegistryUnavailableError("registry unreachable")
        return self.event


def record(
    value: bytes | None, key: bytes | None = b"key", headers: list[tuple[str, bytes | None]] | None = None
) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(TOPIC.name, 0, 7, 0, 0, key, value, None, len(key or b""), len(value or b""), headers or [])


class OutputSerde(FlakySerde):
    """Decodes every record to `event`; encodes what handlers emit as `encode` says, counting the attempts."""

    def __init__(self, event: Event, encode: Any) -> None:
        super().__init__(event)
        self.encode = encode
        self.encodings = 0

    async def serialize(self, topic: Topic, event: Event) -> bytes:
        self.encodings += 1
        encoded: bytes = self.encode(self.encodings)
        return encoded


def runner(serde: FlakySerde, handler: Any) -> ConsumerRunner:
    return ConsumerRunner(consumer=None, serde=serde, handler=handler, settings=SETTINGS)  # type: ignore[arg-type]


async def test_a_registry_outage_is_waited_out_not_dead_lettered() -> None:
    event = sample_event(TOPIC)
    handled: list[Event] = []

    async def handler(topic: Topic, received: Event) -> Sequence[Event]:
        handled.append(received)
        return []

    outcome = await runner(FlakySerde(event, outages=3), handler)._handle(record(b"fine"))
    assert isinstance(outcome, Handled)
    assert handled == [event]


async def test_poison_is_dead_lettered_without_calling_the_handler() -> None:
    async def handler(topic: Topic, received: Event) -> Sequence[Event]:
        raise AssertionError("a poison message must not reach the handler")

    outcome = await runner(FlakySerde(sample_event(TOPIC)), handler)._handle(record(b"poison"))
    assert isinstance(outcome, Failed)
    assert isinstance(outcome.error, DeserializationError)


async def test_a_failing_handler_is_tried_max_attempts_times_then_dead_lettered() -> None:
    calls = 0

    async def handler(topic: Topic, received: Event) -> Sequence[Event]:
        nonlocal calls
        calls += 1
        raise RuntimeError("downstream unavailable")

    outcome = await runner(FlakySerde(sample_event(TOPIC)), handler)._handle(record(b"fine"))
    assert isinstance(outcome, Failed)
    assert outcome.attempts == calls == SETTINGS.handler_max_attempts


async def test_an_attempt_past_the_time_bound_is_cancelled_and_counts_as_a_failed_attempt() -> None:
    cancelled = 0

    async def handler(topic: Topic, received: Event) -> Sequence[Event]:
        nonlocal cancelled
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled += 1
            raise
        return []

    bounded = SETTINGS.model_copy(update={"handler_timeout_seconds": 0.05})
    slow = ConsumerRunner(consumer=None, serde=FlakySerde(sample_event(TOPIC)), handler=handler, settings=bounded)  # type: ignore[arg-type]
    outcome = await asyncio.wait_for(slow._handle(record(b"fine")), 60)
    assert isinstance(outcome, Failed)
    assert isinstance(outcome.error, TimeoutError)
    assert outcome.attempts == cancelled == SETTINGS.handler_max_attempts


async def test_a_cancellation_from_outside_stays_a_cancellation_not_a_failed_attempt() -> None:
    """Shutdown and revokes cancel handlers: that must neither count as a failure nor dead-letter the record."""
    started = asyncio.Event()

    async def handler(topic: Topic, received: Event) -> Sequence[Event]:
        started.set()
        await asyncio.sleep(3600)
        return []

    handling = asyncio.create_task(runner(FlakySerde(sample_event(TOPIC)), handler)._handle(record(b"fine")))
    await started.wait()
    handling.cancel()
    with pytest.raises(asyncio.CancelledError):
        await handling


class Exploding(FlakySerde):
    """A serde tripping over bytes it never expected, with an error that is not a DeserializationError."""

    async def deserialize(self, topic: Topic, data: bytes) -> Event:
        raise IndexError("index out of range")


@pytest.mark.parametrize(
    ("serde", "hostile"),
    [
        (FlakySerde(sample_event(TOPIC)), record(None)),
        (FlakySerde(sample_event(TOPIC)), record(None, key=None)),
        (Exploding(sample_event(TOPIC)), record(b"\x00\x00\x00\x00\x01")),
        (
            FlakySerde(sample_event(TOPIC)),
            record(b"poison", headers=[("correlation-id", b"\xff\xfe"), ("event-id", None), ("traceparent", b"\xff")]),
        ),
    ],
    ids=["tombstone", "null key and value", "any decoding error", "garbage headers"],
)
async def test_a_record_that_is_not_an_event_is_dead_letter_material_whatever_it_is(
    serde: FlakySerde, hostile: ConsumerRecord[bytes, bytes]
) -> None:
    async def handler(topic: Topic, received: Event) -> Sequence[Event]:
        raise AssertionError("a record that is not an event must not reach the handler")

    outcome = await runner(serde, handler)._handle(hostile)
    assert isinstance(outcome, Failed)
    assert outcome.attempts == 0


def test_a_dead_letter_is_always_a_record_a_producer_writes() -> None:
    key, value, headers = dead_letters.dead_letter(record(None, key=None), DeserializationError("tombstone"), 0)
    assert (key, value) == (None, b"")  # aiokafka refuses a record with neither a key nor a value
    assert ("dlq.original.value", b"null") in headers

    huge = record(b"x" * dead_letters.MAX_REQUEST_SIZE, headers=[("event-id", None)])
    key, value, headers = dead_letters.dead_letter(huge, DeserializationError("garbage"), 0)
    assert dead_letters.record_size(key, value, headers) <= dead_letters.MAX_REQUEST_SIZE
    assert dict(headers)["dlq.original.value"] == f"dropped: {dead_letters.MAX_REQUEST_SIZE} bytes".encode()
    assert ("event-id", None) in headers  # a null header stays null


def raising(error: Exception) -> Any:
    def encode(attempt: int) -> bytes:
        raise error

    return encode


@pytest.mark.parametrize(
    ("encode", "error"),
    [
        (raising(SchemaRefusedError("s-value", "incompatible")), SchemaRefusedError),
        (lambda attempt: b"\x00" * (dead_letters.MAX_REQUEST_SIZE + 1), OutputTooLargeError),
        (raising(RegistryUnavailableError("down")), RegistryUnavailableError),
    ],
    ids=["refused by the registry", "over the producer's max request size", "registry outage"],
)
async def test_an_output_that_cannot_be_written_is_retried_then_dead_letters_its_input(
    encode: Any, error: type[Exception]
) -> None:
    event = sample_event(TOPIC)

    async def handler(topic: Topic, received: Event) -> Sequence[Event]:
        return [sample_event(TOPIC)]

    serde = OutputSerde(event, encode)
    outcome = await runner(serde, handler)._handle(record(b"fine"))
    assert isinstance(outcome, Failed)
    assert isinstance(outcome.error, error)
    assert outcome.attempts == serde.encodings == SETTINGS.handler_max_attempts


async def test_an_output_encoded_on_a_retry_is_handled_with_its_bytes_ready_to_send() -> None:
    event = sample_event(TOPIC)
    emitted = sample_event(TOPIC)

    async def handler(topic: Topic, received: Event) -> Sequence[Event]:
        return [emitted]

    def encode(attempt: int) -> bytes:
        if attempt == 1:
            raise RegistryUnavailableError("down")
        return b"\x00encoded"

    outcome = await runner(OutputSerde(event, encode), handler)._handle(record(b"fine"))
    assert isinstance(outcome, Handled)
    [ready] = outcome.emitted
    assert (ready.topic, ready.key, ready.value) == (TOPIC.name, TOPIC.key_of(emitted), b"\x00encoded")
    assert ("event-id", str(emitted.event_id).encode()) in ready.headers
