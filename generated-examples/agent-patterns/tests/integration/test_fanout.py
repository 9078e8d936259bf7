"""Notification fan-out against the real broker: every channel sees every event; a failing or stopped channel
leaves the others' progress and lag untouched, and a stopped one replays from its committed offset."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from functools import partial
from typing import Any

import httpx
import pytest
from aiokafka import TopicPartition
from confluent_kafka.schema_registry import AsyncSchemaRegistryClient

from agent_ops.correlation import HTTP_HEADER
from agent_ops.events.avro import AvroSerde
from agent_ops.kafka.producer import create_producer, stop_producer
from agent_ops.patterns.fanout.channel import ChannelRunner
from agent_ops.patterns.fanout.channels import CHANNELS, TOPIC
from agent_ops.patterns.topics import ensure_pattern_topics
from agent_ops.settings import Settings
from tests.samples import ROUTES, sample_event, unique_key

from .kafka_io import committed_offsets, end_offsets, find_record
from .service import eventually, running_service, service_settings

pytestmark = pytest.mark.integration

NAMES = list(CHANNELS)


class Recorder:
    """Each channel's deliveries of this test's events; `failing` channels raise instead."""

    def __init__(self, keys: set[str], failing: frozenset[str] = frozenset()) -> None:
        self.keys = keys
        self.failing = failing
        self.seen: dict[str, list[str]] = {name: [] for name in NAMES}

    def deliver_for(self, name: str) -> Callable[[Any], Awaitable[None]]:
        async def deliver(event: Any) -> None:
            key = str(getattr(event, TOPIC.key_field))
            if key not in self.keys:
                return  # another test's event on the shared topic
            if name in self.failing:
                raise RuntimeError(f"{name} provider down")
            self.seen[name].append(key)

        return deliver

    async def saw_all(self, names: list[str], keys: list[str]) -> bool:
        return all(set(self.seen[name]) >= set(keys) for name in names)


@asynccontextmanager
async def channel_clients(settings: Settings) -> AsyncIterator[tuple[AvroSerde, Any]]:
    await ensure_pattern_topics(settings)
    registry = AsyncSchemaRegistryClient({"url": settings.schema_registry_url})
    producer = create_producer(settings)
    await producer.start()
    try:
        yield AvroSerde(registry, settings.schema_subject_strategy, settings.schema_auto_register), producer
    finally:
        await stop_producer(producer, settings.shutdown_timeout_seconds)
        await registry.aclose()


def runner(
    name: str, unique: str, recorder: Recorder, serde: AvroSerde, producer: Any, settings: Settings
) -> ChannelRunner:
    """The channel as generated, in a consumer group of this test's own, delivering to `recorder`."""
    channel = replace(CHANNELS[name], group=f"{CHANNELS[name].group}-{unique}", deliver=recorder.deliver_for(name))
    return ChannelRunner(channel, TOPIC, serde, producer, settings)


async def publish(client: httpx.AsyncClient, keys: list[str], correlation: str | None = None) -> None:
    headers = {HTTP_HEADER: correlation} if correlation else {}
    for key in keys:
        event = sample_event(TOPIC, key=key)
        response = await client.post(ROUTES[TOPIC.name], json=event.model_dump(mode="json"), headers=headers)
        assert response.status_code == 202, response.text


async def caught_up(bootstrap: str, group: str) -> bool:
    """Whether `group` has committed up to the end of every partition of the topic: no lag."""
    ends = await end_offsets(bootstrap, TOPIC.name, TOPIC.partitions)
    committed = await committed_offsets(bootstrap, group, list(ends))
    return all(committed[tp] >= end for tp, end in ends.items())


def fanout_settings(bootstrap: str, unique: str) -> Settings:
    overrides: dict[str, Any] = {"fanout_poll_timeout_ms": 100, "fanout_retry_backoff_seconds": 0.01}
    overrides["consumer_enabled"] = False  # the channels alone read the topic here
    return service_settings(bootstrap, unique, **overrides)


async def test_every_channel_sees_every_event(kafka_bootstrap: str, unique: str) -> None:
    keys = [unique_key(TOPIC) for _ in range(30)]
    recorder = Recorder(set(keys))
    settings = fanout_settings(kafka_bootstrap, unique)
    async with running_service(settings) as client, channel_clients(settings) as (serde, producer):
        runners = [runner(name, unique, recorder, serde, producer, settings) for name in NAMES]
        for each in runners:
            await each.start()
        try:
            await publish(client, keys)
            await eventually(partial(recorder.saw_all, NAMES, keys), within=90)
        finally:
            await asyncio.gather(*(each.stop() for each in runners))
    for name in NAMES:
        assert sorted(recorder.seen[name]) == sorted(keys), f"{name} saw each event once"


async def test_a_failing_channel_dead_letters_and_holds_no_other_channel_back(
    kafka_bootstrap: str, unique: str
) -> None:
    failing, *healthy = NAMES
    keys = [unique_key(TOPIC) for _ in range(10)]
    recorder = Recorder(set(keys), failing=frozenset({failing}))
    settings = fanout_settings(kafka_bootstrap, unique)
    async with running_service(settings) as client, channel_clients(settings) as (serde, producer):
        runners = {name: runner(name, unique, recorder, serde, producer, settings) for name in NAMES}
        for each in runners.values():
            await each.start()
        try:
            await publish(client, keys, correlation=f"req-{unique}")
            for name in healthy:
                await eventually(partial(recorder.saw_all, [name], keys), within=90)
                await eventually(partial(caught_up, kafka_bootstrap, runners[name].channel.group), within=60)
            dead = await find_record(kafka_bootstrap, CHANNELS[failing].dead_letter, keys[-1].encode(), within=90)
        finally:
            await asyncio.gather(*(each.stop() for each in runners.values()))
    headers = dict(dead.headers)
    assert headers["dlq.channel"] == failing.encode()
    assert headers["dlq.error.message"] == f"{failing} provider down".encode()
    assert headers["correlation-id"] == f"req-{unique}".encode()
    assert recorder.seen[failing] == []


async def test_a_stopped_channel_replays_from_its_committed_offset_while_the_others_go_on(
    kafka_bootstrap: str, unique: str
) -> None:
    paused, *others = NAMES
    before = [unique_key(TOPIC) for _ in range(10)]
    during = [unique_key(TOPIC) for _ in range(10)]
    recorder = Recorder(set(before + during))
    settings = fanout_settings(kafka_bootstrap, unique)
    async with running_service(settings) as client, channel_clients(settings) as (serde, producer):
        runners = {name: runner(name, unique, recorder, serde, producer, settings) for name in NAMES}
        for each in runners.values():
            await each.start()
        try:
            await publish(client, before)
            await eventually(partial(recorder.saw_all, NAMES, before), within=90)
            await runners[paused].stop()
            group = runners[paused].channel.group
            partitions = [TopicPartition(TOPIC.name, p) for p in range(TOPIC.partitions)]
            paused_at = await committed_offsets(kafka_bootstrap, group, partitions)

            await publish(client, during)
            for name in others:
                await eventually(partial(recorder.saw_all, [name], during), within=90)
                await eventually(partial(caught_up, kafka_bootstrap, runners[name].channel.group), within=60)
            assert await committed_offsets(kafka_bootstrap, group, partitions) == paused_at, "a paused channel is still"
            assert not set(recorder.seen[paused]) & set(during)

            runners[paused] = runner(paused, unique, recorder, serde, producer, settings)
            await runners[paused].start()
            await eventually(partial(recorder.saw_all, [paused], during), within=90)
        finally:
            await asyncio.gather(*(each.stop() for each in runners.values()))
    assert sorted(recorder.seen[paused]) == sorted(before + during), "resumed where it stopped: nothing twice"
