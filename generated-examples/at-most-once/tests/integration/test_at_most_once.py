"""At-most-once: offsets are committed before handling, so a crash mid-handling loses the message and never
hands it to a handler twice."""

import asyncio
import re

import pytest
from aiokafka import TopicPartition

from task_sampler.app import create_app
from task_sampler.events.catalog import CONSUMED_TOPICS
from task_sampler.events.models import Event
from task_sampler.handlers import EventHandlers
from tests.samples import ROUTES, sample_event, unique_key

from .kafka_io import committed_offsets
from .service import eventually, running_service, service_settings

pytestmark = pytest.mark.integration

TOPIC = CONSUMED_TOPICS[0]
ROUTE = ROUTES[TOPIC.name]


async def test_the_offset_is_committed_before_the_handler_runs_and_a_crash_never_repeats_it(
    kafka_bootstrap: str, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    victim = sample_event(TOPIC, key=unique_key(TOPIC))
    handler_name = "on_" + re.sub(r"(?<!^)(?=[A-Z])", "_", type(victim).__name__).lower()
    original = getattr(EventHandlers, handler_name)
    calls: list[str] = []
    in_handler = asyncio.Event()
    never = asyncio.Event()

    async def hanging_on_the_victim(self: EventHandlers, received: Event) -> list[Event]:
        if received.event_id == victim.event_id:
            calls.append(str(received.event_id))
            in_handler.set()
            await never.wait()  # the process "dies" here
        emitted: list[Event] = await original(self, received)
        return emitted

    monkeypatch.setattr(EventHandlers, handler_name, hanging_on_the_victim)
    settings = service_settings(kafka_bootstrap, unique)
    app = create_app(settings)
    async with running_service(settings, app) as client:
        response = await client.post(ROUTE, json=victim.model_dump(mode="json"))
        assert response.status_code == 202
        tp = TopicPartition(TOPIC.name, response.json()["partition"])
        await asyncio.wait_for(in_handler.wait(), 30)
        committed = await committed_offsets(kafka_bootstrap, settings.kafka_consumer_group, [tp])
        assert committed[tp] > response.json()["offset"], "committed before the handler finished"
        # A crash: the runner's task dies in the middle of the handler.
        app.state.runner._task.cancel()

    marker = sample_event(TOPIC, key=unique_key(TOPIC))
    async with running_service(settings) as client:
        assert (await client.post(ROUTE, json=marker.model_dump(mode="json"))).status_code == 202

        async def marker_consumed() -> bool:
            return (await client.get(f"{ROUTE}/{TOPIC.key_of(marker).decode()}")).status_code == 200

        await eventually(marker_consumed)
        assert (await client.get(f"{ROUTE}/{TOPIC.key_of(victim).decode()}")).status_code == 404
    assert calls == [str(victim.event_id)], "handed to a handler once, never again after the crash"
