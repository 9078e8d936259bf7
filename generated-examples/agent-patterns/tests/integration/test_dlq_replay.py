"""`dlq replay` against a real broker: a dead-lettered event, replayed once its cause is fixed, is processed once,
and a second replay puts nothing back. Counted with librdkafka (confluent-kafka), not with the code under test."""

import asyncio
import re
import time
import uuid
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from agent_ops.events.catalog import CONSUMED_TOPICS
from agent_ops.events.models import Event
from agent_ops.handlers import EventHandlers
from agent_ops.kafka.dlq_replay import REPLAYED_FROM, discard, replay
from tests.samples import ROUTES, sample_event, unique_key

from .service import eventually, running_service, service_settings

pytestmark = pytest.mark.integration

TOPIC = next(topic for topic in CONSUMED_TOPICS if topic.name in ROUTES)
ROUTE = ROUTES[TOPIC.name]


def librdkafka(bootstrap: str) -> dict[str, Any]:
    return {"bootstrap.servers": bootstrap}


def records_with_key(bootstrap: str, topic: str, key: bytes) -> list[list[tuple[str, bytes]]]:
    """The headers of every committed record on `topic` with `key`, read by librdkafka up to the topic's end."""
    consumer = Consumer(
        {
            **librdkafka(bootstrap),
            "group.id": f"count-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics[topic]
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in metadata.partitions}
        consumer.assign([TopicPartition(topic, p, 0) for p, end in ends.items() if end > 0])
        found: list[list[tuple[str, bytes]]] = []
        deadline = time.monotonic() + 30
        # Positions, not the last offset read: a transaction's commit marker takes the last offset and is never read.
        while consumer.assignment() and any(
            tp.offset < ends[tp.partition] for tp in consumer.position(consumer.assignment())
        ):
            assert time.monotonic() < deadline, "the topic's end was not reached"
            message = consumer.poll(0.5)
            if message is None or message.error() or message.key() != key:
                continue
            headers = message.headers() or []
            pairs = headers.items() if isinstance(headers, dict) else headers
            found.append([(name, value if isinstance(value, bytes) else b"") for name, value in pairs])
        return found
    finally:
        consumer.close()


async def test_a_replayed_dead_letter_is_processed_once_and_replayed_once(
    kafka_bootstrap: str, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = sample_event(TOPIC, key=unique_key(TOPIC))
    key = TOPIC.key_of(event)
    handler_name = "on_" + re.sub(r"(?<!^)(?=[A-Z])", "_", type(event).__name__).lower()
    original = getattr(EventHandlers, handler_name)
    broken = True
    handled: list[str] = []

    async def failing_until_fixed(self: EventHandlers, received: Event) -> list[Event]:
        if broken and received.event_id == event.event_id:
            raise RuntimeError("a dependency is down")
        emitted: list[Event] = await original(self, received)
        handled.append(str(received.event_id))
        return emitted

    monkeypatch.setattr(EventHandlers, handler_name, failing_until_fixed)
    settings = service_settings(
        kafka_bootstrap,
        unique,
        handler_max_attempts=1,
    )
    # Dead letters other tests left on this stack are not this test's: the replay starts after them.
    await discard(settings, [TOPIC.name])
    async with running_service(settings) as client:
        assert (await client.post(ROUTE, json=event.model_dump(mode="json"))).status_code == 202

        async def dead_lettered() -> bool:
            return len(await asyncio.to_thread(records_with_key, kafka_bootstrap, TOPIC.dead_letter, key)) == 1

        await eventually(dead_lettered, within=60)
        broken = False  # the cause is fixed

        first = await replay(settings, [TOPIC.name])
        assert first.per_topic[TOPIC.name] >= 1  # this test's, and any another test dead-lettered meanwhile

        async def processed() -> bool:
            return str(event.event_id) in handled

        await eventually(processed, within=60)
        await replay(settings, [TOPIC.name])  # a dead letter already put back is not replayed again

    copies = await asyncio.to_thread(records_with_key, kafka_bootstrap, TOPIC.name, key)
    replayed = [headers for headers in copies if any(name == REPLAYED_FROM for name, _ in headers)]
    assert len(copies) == 2, "the original and one replayed copy"
    assert len(replayed) == 1
    assert not any(name.startswith("dlq.original") for name, _ in replayed[0]), "the dead letter's headers are gone"
    assert handled.count(str(event.event_id)) == 1, "processed once"
