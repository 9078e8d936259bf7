"""At-least-once: a redelivered event reaches its handler once, by event id, even across a restart."""

import re
from pathlib import Path

import pytest
from aiokafka import TopicPartition

from order_pipelines.events.catalog import CONSUMED_TOPICS
from order_pipelines.events.models import Event
from order_pipelines.handlers import EventHandlers
from tests.samples import ROUTES, sample_event, unique_key

from .kafka_io import committed_offsets
from .service import eventually, running_service, service_settings

pytestmark = pytest.mark.integration

TOPIC = CONSUMED_TOPICS[0]
ROUTE = ROUTES[TOPIC.name]


async def test_a_redelivered_event_is_handled_once_even_after_a_restart(
    kafka_bootstrap: str, unique: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = sample_event(TOPIC, key=unique_key(TOPIC))
    marker = sample_event(TOPIC, key=unique_key(TOPIC))
    handler_name = "on_" + re.sub(r"(?<!^)(?=[A-Z])", "_", type(event).__name__).lower()
    original = getattr(EventHandlers, handler_name)
    calls: list[str] = []

    async def counting(self: EventHandlers, received: Event) -> list[Event]:
        calls.append(str(received.event_id))
        emitted: list[Event] = await original(self, received)
        return emitted

    monkeypatch.setattr(EventHandlers, handler_name, counting)
    store = str(tmp_path / "processed.sqlite")
    for run, group in enumerate([f"{unique}-a", f"{unique}-b"]):
        # The second run is a fresh consumer group: it reads every event again, as after lost offsets.
        async with running_service(service_settings(kafka_bootstrap, group, processed_events_path=store)) as client:
            body = event.model_dump(mode="json")
            assert (await client.post(ROUTE, json=body)).status_code == 202  # a client retry: same event_id
            if run == 1:
                assert (await client.post(ROUTE, json=marker.model_dump(mode="json"))).status_code == 202

            async def consumed(key: bytes = TOPIC.key_of(marker if run else event)) -> bool:
                return (await client.get(f"{ROUTE}/{key.decode()}")).status_code == 200

            await eventually(consumed)
    assert calls.count(str(event.event_id)) == 1, "three deliveries, one handling"


async def test_a_handled_event_is_committed_while_the_poll_waits(kafka_bootstrap: str, unique: str) -> None:
    # Polls that wait two minutes for records: once the topic is read, the last commit must not wait for one to
    # return, or a crash meanwhile would repeat all that was handled since the previous commit.
    settings = service_settings(kafka_bootstrap, unique, consumer_poll_timeout_ms=120_000)
    async with running_service(settings) as client:
        response = await client.post(ROUTE, json=sample_event(TOPIC, key=unique_key(TOPIC)).model_dump(mode="json"))
        assert response.status_code == 202
        partition, offset = int(response.json()["partition"]), int(response.json()["offset"])
        tp = TopicPartition(TOPIC.name, partition)

        async def committed_past_it() -> bool:
            offsets = await committed_offsets(kafka_bootstrap, settings.kafka_consumer_group, [tp])
            return offsets[tp] > offset

        await eventually(committed_past_it, within=60)
