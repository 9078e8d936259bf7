"""The runner's decisions for one record, without a broker: retries, dead letters, and a registry outage."""

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from aiokafka import ConsumerRecord

from agent_ops.events.catalog import CONSUMED_TOPICS, Topic
from agent_ops.events.models import Event
from agent_ops.events.serde import DeserializationError, RegistryUnavailableError
from agent_ops.kafka.consumer import ConsumerRunner, Failed, Handled
from agent_ops.settings import Settings
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


def record(value: bytes) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(TOPIC.name, 0, 7, 0, 0, b"key", value, None, len(b"key"), len(value), [])


def runner(serde: FlakySerde, handler: Any) -> ConsumerRunner:
    return ConsumerRunner(consumer=None, serde=serde, handler=handler, settings=SETTINGS)


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
    slow = ConsumerRunner(consumer=None, serde=FlakySerde(sample_event(TOPIC)), handler=handler, settings=bounded)
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
