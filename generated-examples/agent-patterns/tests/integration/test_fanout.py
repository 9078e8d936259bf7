"""Notification fan-out against the real broker: every channel sees every event; a failing or stopped channel
leaves the others' progress and lag untouched, and a stopped one replays from its committed offset. Records that are
not events go to each channel's dead-letter topic and stop no channel; a partition that moves mid-batch is handed
over cleanly, delivered once; a channel leaves no lag behind a transactional producer."""

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from functools import partial
from typing import Any

import httpx
import pytest
from aiokafka import TopicPartition
from aiokafka.admin import NewTopic
from confluent_kafka import Producer
from confluent_kafka.schema_registry import AsyncSchemaRegistryClient

from agent_ops.correlation import HTTP_HEADER
from agent_ops.events.avro import AvroSerde
from agent_ops.events.catalog import Topic
from agent_ops.kafka.admin import ensure_topics
from agent_ops.kafka.producer import create_producer, stop_producer
from agent_ops.main import chosen_plugins
from agent_ops.patterns.fanout.channel import ChannelRunner
from agent_ops.patterns.fanout.channels import CHANNELS, TOPIC
from agent_ops.patterns.fanout.settings import FanoutSettings
from agent_ops.plugins import chosen
from agent_ops.settings import Settings
from tests.samples import ROUTES, sample_event, unique_key

from .hostile_records import dead_letters, lag, librdkafka, write_hostile
from .kafka_io import committed_offsets, create_topics, end_offsets, find_record
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
    if settings.kafka_create_topics:  # as the service's start-up does
        await ensure_topics(settings, chosen(chosen_plugins()).topics)
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
    channel = replace(CHANNELS[name], group=f"test-{unique}-{name}", deliver=recorder.deliver_for(name))
    return ChannelRunner(channel, TOPIC, serde, producer, settings, fanout=FANOUT)


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


# Short polls and retries for the channels, as service_settings has for the runner.
FANOUT = FanoutSettings(poll_timeout_ms=100, retry_backoff_seconds=0.01)


def fanout_settings(bootstrap: str, unique: str, **more: Any) -> Settings:
    overrides: dict[str, Any] = dict(more)
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


async def own_topic(bootstrap: str, unique: str) -> Topic:
    """The fanned-out topic's events, on a topic of the test's own: what it writes there reaches no other test."""
    topic = replace(TOPIC, name=f"test.fanout.{unique}")
    dlqs = {name: f"{topic.name}.{name}.dlq" for name in NAMES}
    await create_topics(
        bootstrap,
        NewTopic(topic.name, topic.partitions, 1),
        *(NewTopic(dlq, topic.partitions, 1) for dlq in dlqs.values()),
    )
    return topic


def own_runner(
    name: str, topic: Topic, recorder: Recorder, serde: AvroSerde, producer: Any, settings: Settings, group: str
) -> ChannelRunner:
    channel = replace(
        CHANNELS[name], group=group, dead_letter=f"{topic.name}.{name}.dlq", deliver=recorder.deliver_for(name)
    )
    return ChannelRunner(channel, topic, serde, producer, settings, fanout=FANOUT)


async def encoded(serde: AvroSerde, keys: list[str]) -> list[tuple[str, bytes]]:
    """Each key's event as the service writes it (the fanned-out topic's schema, registered)."""
    return [(key, await serde.serialize(TOPIC, sample_event(TOPIC, key=key))) for key in keys]


def write_events(
    bootstrap: str,
    topic: str,
    events: list[tuple[str, bytes]],
    transactional_id: str | None = None,
    headers: list[tuple[str, Any]] | None = None,
) -> None:
    """Write encoded events with librdkafka, keyed as the service keys them; in one transaction when given an id."""
    config: dict[str, Any] = librdkafka(bootstrap) | {"enable.idempotence": True}
    writer = Producer(config | ({"transactional.id": transactional_id} if transactional_id else {}))
    if transactional_id:
        writer.init_transactions(30)
        writer.begin_transaction()
    for key, value in events:
        writer.produce(topic, value, key=key.encode(), headers=headers or [])
    if transactional_id:
        writer.commit_transaction(30)
    assert writer.flush(30) == 0


async def no_lag(bootstrap: str, group: str, topic: Topic) -> bool:
    behind = await asyncio.to_thread(lag, bootstrap, group, topic.name, topic.partitions)
    return set(behind.values()) == {0}


async def test_records_that_are_not_events_are_dead_lettered_by_every_channel_which_goes_on(
    kafka_bootstrap: str, unique: str
) -> None:
    settings = fanout_settings(kafka_bootstrap, unique)
    topic = await own_topic(kafka_bootstrap, unique)
    keys = [unique_key(TOPIC) for _ in range(2 * TOPIC.partitions)]
    recorder = Recorder(set(keys))
    async with channel_clients(settings) as (serde, producer):
        events = await encoded(serde, keys)
        written: list[str] = []
        for partition in range(topic.partitions):
            written += await asyncio.to_thread(write_hostile, kafka_bootstrap, topic.name, partition)
        truncated = events[0][1][:-4]
        await asyncio.to_thread(write_events, kafka_bootstrap, topic.name, [("truncated body", truncated)])
        # Valid events with headers no producer of ours writes: not UTF-8, or without a value.
        odd_headers = [("correlation-id", b"\xff\xfe"), ("event-id", None)]
        await asyncio.to_thread(write_events, kafka_bootstrap, topic.name, events, None, odd_headers)
        groups = {name: f"test-{unique}-{name}" for name in NAMES}
        runners = [own_runner(name, topic, recorder, serde, producer, settings, groups[name]) for name in NAMES]
        for each in runners:
            await each.start()
        try:
            await eventually(partial(recorder.saw_all, NAMES, keys), within=90)
            for name in NAMES:
                await eventually(partial(no_lag, kafka_bootstrap, groups[name], topic), within=60)
            assert all(each.running for each in runners), "no record stops a channel"
        finally:
            await asyncio.gather(*(each.stop() for each in runners))
    for name in NAMES:
        assert sorted(recorder.seen[name]) == sorted(keys), f"{name} delivered each event once"
        dead = await asyncio.to_thread(dead_letters, kafka_bootstrap, f"{topic.name}.{name}.dlq", topic.partitions)
        kinds = sorted(key.decode() if key else "null key and value" for key, _ in dead)
        assert kinds == sorted([*written, "truncated body"]), f"{name} dead-lettered each hostile record once"
        for _, headers in dead:
            assert headers["dlq.channel"] == name.encode()
            assert headers["dlq.original.topic"] == topic.name.encode()
            assert headers["dlq.error.type"] == b"DeserializationError"


async def test_a_channel_leaves_no_lag_behind_a_transactional_producer(kafka_bootstrap: str, unique: str) -> None:
    """Kafka Connect's exactly-once sources, or another service's transactions, end each with a commit marker:
    the channel commits past it, so the lag alert and `doctor` read 0 at rest, not 1."""
    settings = fanout_settings(kafka_bootstrap, unique)
    topic = await own_topic(kafka_bootstrap, unique)
    keys = [unique_key(TOPIC) for _ in range(2 * TOPIC.partitions)]
    recorder = Recorder(set(keys))
    name = NAMES[0]
    group = f"test-{unique}-{name}"
    async with channel_clients(settings) as (serde, producer):
        events = await encoded(serde, keys)
        await asyncio.to_thread(write_events, kafka_bootstrap, topic.name, events, f"test-{unique}-source")
        runner = own_runner(name, topic, recorder, serde, producer, settings, group)
        await runner.start()
        try:
            await eventually(partial(recorder.saw_all, [name], keys), within=90)
            await eventually(partial(no_lag, kafka_bootstrap, group, topic), within=60)
        finally:
            await runner.stop()


async def test_a_partition_that_moves_mid_batch_is_handed_over_and_delivered_once(
    kafka_bootstrap: str, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second instance of a channel joins while the first has deliveries in hand: the first lets them finish,
    commits them and hands the partitions over; it goes on with the others, and nothing is delivered twice."""
    settings = fanout_settings(kafka_bootstrap, unique, consumer_revoke_wait_seconds=60.0)
    topic = await own_topic(kafka_bootstrap, unique)
    keys = [unique_key(TOPIC) for _ in range(5 * TOPIC.partitions)]
    name = NAMES[0]
    group = f"test-{unique}-{name}"
    gate = asyncio.Event()
    delivered: Counter[str] = Counter()
    delivered_by: dict[str, set[str]] = {"first": set(), "second": set()}
    in_hand: set[str] = set()

    class Gated(Recorder):
        def __init__(self, instance: str) -> None:
            super().__init__(set(keys))
            self.instance = instance

        def deliver_for(self, channel: str) -> Callable[[Any], Awaitable[None]]:
            async def deliver(event: Any) -> None:
                key = str(getattr(event, TOPIC.key_field))
                in_hand.add(key)
                await gate.wait()
                delivered[key] += 1
                delivered_by[self.instance].add(key)
                recorder.seen[channel].append(key)

            return deliver

    recorder = Recorder(set(keys))
    async with channel_clients(settings) as (serde, producer):
        await asyncio.to_thread(write_events, kafka_bootstrap, topic.name, await encoded(serde, keys))
        first = own_runner(name, topic, Gated("first"), serde, producer, settings, group)
        await first.start()
        second = own_runner(name, topic, Gated("second"), serde, producer, settings, group)
        try:

            async def holding() -> bool:
                return bool(in_hand)

            await eventually(holding, within=60)
            held = set(in_hand)
            # The gate opens once the first instance is asked to give its partitions up, deliveries in hand.
            revoking = asyncio.Event()
            on_revoked = first.on_revoked

            async def revoke(revoked: set[TopicPartition]) -> None:
                if revoked:
                    revoking.set()
                await on_revoked(revoked)

            monkeypatch.setattr(first, "on_revoked", revoke)
            # A consumer's start returns once it has partitions: only after the first gave its up.
            joining = asyncio.create_task(second.start())
            await asyncio.wait_for(revoking.wait(), timeout=60)
            gate.set()
            await joining
            await eventually(partial(recorder.saw_all, [name], keys), within=90)
            await eventually(partial(no_lag, kafka_bootstrap, group, topic), within=60)
            assert first.running, "the first instance went on after its partitions moved"
            assert second.running
        finally:
            gate.set()
            await asyncio.gather(first.stop(), second.stop())
    assert set(delivered) == set(keys)
    assert {key: count for key, count in delivered.items() if count > 1} == {}, "no event delivered twice"
    assert held <= delivered_by["first"], "the first instance finished what it held, rather than abandon it"
