"""The publisher's bounds without a broker: a full in-flight budget refuses at once, an unacknowledged send fails
within its timeout, an unencodable event is 422."""

import asyncio
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from agent_tasks.api.dependencies import get_publisher
from agent_tasks.events.catalog import TOPICS, Topic
from agent_tasks.events.models import Event
from agent_tasks.kafka.port import Delivery
from agent_tasks.kafka.producer import (
    EventPublisher,
    PublishBackpressure,
    PublishError,
    UnpublishableEvent,
)
from agent_tasks.main import create_app
from agent_tasks.settings import Settings
from tests.samples import ROUTES, sample_event


class SilentProducer:
    """Accepts every send and never acknowledges it, like a producer while the broker is away."""

    def __init__(self) -> None:
        self.sent = 0

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def flush(self) -> None:
        pass

    async def send(self, topic: str, value: bytes | None = None, *args: Any, **kwargs: Any) -> Delivery:
        self.sent += topic in {t.name for t in TOPICS}  # events only, not what patterns send beside them
        return asyncio.get_running_loop().create_future()


class BrokenSerde:
    async def serialize(self, topic: Topic, event: Event) -> bytes:
        raise ValueError("no encoding for this event")

    async def deserialize(self, topic: Topic, data: bytes) -> Event:
        raise NotImplementedError


class FakeSerde:
    async def serialize(self, topic: Topic, event: Event) -> bytes:
        return b"{}"

    async def deserialize(self, topic: Topic, data: bytes) -> Event:
        raise NotImplementedError


async def test_a_full_in_flight_budget_refuses_at_once_instead_of_queueing() -> None:
    producer = SilentProducer()
    publisher = EventPublisher(producer, FakeSerde(), timeout_seconds=30, max_in_flight=2)
    waiting = [asyncio.create_task(publisher.publish(sample_event(TOPICS[0]))) for _ in range(2)]
    await asyncio.sleep(0.05)
    async with asyncio.timeout(1):
        with pytest.raises(PublishBackpressure):
            await publisher.publish(sample_event(TOPICS[0]))
    assert producer.sent == 2
    for task in waiting:
        task.cancel()
    await asyncio.gather(*waiting, return_exceptions=True)


async def test_an_unacknowledged_send_fails_within_its_timeout_and_frees_its_place() -> None:
    timeout = 0.3
    publisher = EventPublisher(SilentProducer(), FakeSerde(), timeout_seconds=timeout, max_in_flight=2)

    async def timed_publish() -> float:
        started = time.monotonic()
        with pytest.raises(PublishError, match="no acknowledgement within"):
            await publisher.publish(sample_event(TOPICS[0]))
        return time.monotonic() - started

    async def later(delay: float) -> float:
        await asyncio.sleep(delay)
        return await timed_publish()

    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    topic = TOPICS[0].name
    in_flight = sample("messaging_kafka_producer_in_flight_messages")
    labels = {"messaging_destination_name": topic, "error_type": "CancelledError"}
    failed = sample("messaging_client_sent_messages_total", **labels)
    # Started at different times, so they fall in different slots of the shared deadline timer.
    for elapsed in await asyncio.gather(timed_publish(), later(0.115)):
        # Never before the timeout (the shared timer is at most its 10 ms slot early); the upper bound only says
        # that it does not hang, with room for a slow machine.
        assert timeout - 0.05 <= elapsed < timeout + 10
    # Counted as failed sends, and no longer in flight (the counting callbacks run on the loop's next turns).
    for _ in range(500):
        if sample("messaging_kafka_producer_in_flight_messages") == in_flight:
            break
        await asyncio.sleep(0.01)
    assert sample("messaging_kafka_producer_in_flight_messages") == in_flight
    assert sample("messaging_client_sent_messages_total", **labels) == failed + 2
    # Both places are free again: two more sends are accepted (and time out in turn), none refused.
    await asyncio.gather(timed_publish(), timed_publish())


async def test_a_cancelled_caller_sees_its_cancellation_not_a_timeout() -> None:
    publisher = EventPublisher(SilentProducer(), FakeSerde(), timeout_seconds=30, max_in_flight=1)
    waiting = asyncio.create_task(publisher.publish(sample_event(TOPICS[0])))
    await asyncio.sleep(0.05)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    again = asyncio.create_task(publisher.publish(sample_event(TOPICS[0])))
    await asyncio.sleep(0.05)
    assert not again.done(), "the cancelled send's place should be free again"
    again.cancel()
    await asyncio.gather(again, return_exceptions=True)


async def test_an_event_that_cannot_be_encoded_is_unpublishable() -> None:
    publisher = EventPublisher(SilentProducer(), BrokenSerde(), timeout_seconds=1, max_in_flight=1)
    with pytest.raises(UnpublishableEvent):
        await publisher.publish(sample_event(TOPICS[0]))


def test_backpressure_is_503_and_unpublishable_is_422() -> None:
    topic = TOPICS[0]
    body = sample_event(topic).model_dump(mode="json")
    for error, status in [(PublishBackpressure("full"), 503), (UnpublishableEvent("bad"), 422)]:

        class Failing:
            async def publish(self, event: Event, error: Exception = error) -> Any:
                raise error

        app = create_app(Settings())
        app.dependency_overrides[get_publisher] = Failing
        response = TestClient(app).post(ROUTES[topic.name], json=body)
        assert response.status_code == status, response.text
        assert ("Retry-After" in response.headers) == (status == 503)
