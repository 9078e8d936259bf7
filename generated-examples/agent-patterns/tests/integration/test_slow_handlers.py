"""Slow handlers (a language model's seconds per event) against the real broker: the members keep their partitions
however long a handler takes, and one partition's records run concurrently while each key stays in order."""

import asyncio
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.partitioner import murmur2

from agent_ops import app as app_module
from agent_ops.events.catalog import CONSUMED_TOPICS, Topic
from agent_ops.events.models import Event
from agent_ops.kafka import consumer as consumer_module
from agent_ops.kafka import runners
from agent_ops.kafka.consumer import ConsumerRunner, Handler
from agent_ops.main import create_app
from tests.samples import ROUTES, sample_event, unique_key

from .service import eventually, running_service, service_settings

pytestmark = pytest.mark.integration

TOPIC = CONSUMED_TOPICS[0]
ROUTE = ROUTES[TOPIC.name]


class Rebalances:
    """Counts the revocations and assignments every member of this test goes through."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.revoked = 0
        self.assigned = 0
        revoked = consumer_module.Rebalance.on_partitions_revoked
        assigned = consumer_module.Rebalance.on_partitions_assigned

        async def counting_revoked(listener: Any, partitions: set[TopicPartition]) -> None:
            self.revoked += 1
            await revoked(listener, partitions)

        async def counting_assigned(listener: Any, partitions: set[TopicPartition]) -> None:
            self.assigned += 1
            await assigned(listener, partitions)

        monkeypatch.setattr(consumer_module.Rebalance, "on_partitions_revoked", counting_revoked)
        monkeypatch.setattr(consumer_module.Rebalance, "on_partitions_assigned", counting_assigned)


def wrap_handler(monkeypatch: pytest.MonkeyPatch, wrap: Any) -> None:
    """Every runner the app creates from now on gets `wrap(handler)` instead of its handler."""
    create_runner = runners.create_runner

    def wrapped(settings: Any, serde: Any, handler: Handler, producer: Any, hooks: Any) -> ConsumerRunner:
        return create_runner(settings, serde, wrap(handler), producer, hooks)

    monkeypatch.setattr(app_module, "create_runner", wrapped)


async def test_a_handler_slower_than_max_poll_interval_keeps_both_members_in_the_group(
    kafka_bootstrap: str, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Relies on `consumer_max_poll_interval_ms` (CONSUMER_MAX_POLL_INTERVAL_MS): aiokafka leaves the group when
    `getmany` is not called for that long. Each handler takes 1.5 times as long; no member may leave."""
    interval_ms = 2000  # well above the loop's 100 ms polls even on a loaded machine
    handler_seconds = 1.5 * interval_ms / 1000
    handled: Counter[str] = Counter()
    events = [sample_event(TOPIC, key=unique_key(TOPIC)) for _ in range(2 * TOPIC.partitions)]
    ours = {str(event.event_id) for event in events}

    def slow(handler: Handler) -> Handler:
        async def handle(topic: Topic, event: Event) -> Sequence[Event]:
            if str(event.event_id) in ours:  # other tests' events on the topic pass at full speed
                await asyncio.sleep(handler_seconds)
                handled[str(event.event_id)] += 1
            return await handler(topic, event)

        return handle

    wrap_handler(monkeypatch, slow)
    rebalances = Rebalances(monkeypatch)
    settings = service_settings(
        kafka_bootstrap,
        unique,
        consumer_max_poll_interval_ms=interval_ms,
        consumer_session_timeout_ms=10_000,
        consumer_heartbeat_interval_ms=1000,
    )
    apps = [create_app(settings), create_app(settings)]
    async with running_service(settings, apps[0]) as first, running_service(settings, apps[1]) as second:
        members = [first, second]

        async def settled() -> bool:
            """Both members own partitions, together all of them: the join rebalance is over."""
            lags = [(await client.get("/health/ready")).json().get("lag", {}) for client in members]
            owned = [set(lag) for lag in lags]
            return all(owned) and len(owned[0] | owned[1]) == sum(topic.partitions for topic in CONSUMED_TOPICS)

        await eventually(settled, within=90)
        # The premise: aiokafka's consumers enforce the low interval (a private attribute: no public accessor).
        assert [app.state.runner._consumer._max_poll_interval_ms for app in apps] == [interval_ms, interval_ms]
        before = (rebalances.revoked, rebalances.assigned)
        for event in events:
            assert (await first.post(ROUTE, json=event.model_dump(mode="json"))).status_code == 202

        async def all_handled() -> bool:
            return all(handled[str(event.event_id)] for event in events)

        await eventually(all_handled, within=120)
        assert (rebalances.revoked, rebalances.assigned) == before, "a member left or joined: a rebalance happened"
    assert {str(event.event_id): handled[str(event.event_id)] for event in events} == {
        str(event.event_id): 1 for event in events
    }, "every event handled once"


def keys_in_partition(partition: int, count: int) -> list[str]:
    """`count` fresh keys that the default partitioner (murmur2, as the Java client) puts in `partition`."""
    keys: list[str] = []
    while len(keys) < count:
        key = unique_key(TOPIC)
        if (murmur2(key.encode()) & 0x7FFFFFFF) % TOPIC.partitions == partition:
            keys.append(key)
    return keys


async def test_one_key_is_handled_in_order_one_at_a_time_while_other_keys_of_its_partition_proceed(
    kafka_bootstrap: str, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Relies on `consumer_concurrency` (CONSUMER_CONCURRENCY): up to that many records of a partition at once."""
    per_key = 4
    keys = keys_in_partition(0, 3)
    events = [sample_event(TOPIC, key=key) for _ in range(per_key) for key in keys]
    running: Counter[bytes] = Counter()
    overlaps: list[bytes] = []
    most_at_once = 0
    order: dict[bytes, list[str]] = {}

    def observed(handler: Handler) -> Handler:
        async def handle(topic: Topic, event: Event) -> Sequence[Event]:
            nonlocal most_at_once
            key = topic.key_of(event)
            if key.decode() not in keys:  # other tests' events on the topic
                return await handler(topic, event)
            if running[key]:
                overlaps.append(key)
            running[key] += 1
            most_at_once = max(most_at_once, sum(running.values()))
            order.setdefault(key, []).append(str(event.event_id))
            try:
                await asyncio.sleep(0.3)
                return await handler(topic, event)
            finally:
                running[key] -= 1

        return handle

    wrap_handler(monkeypatch, observed)
    settings = service_settings(kafka_bootstrap, unique, consumer_concurrency=4)
    async with running_service(settings) as client:
        for event in events:
            assert (await client.post(ROUTE, json=event.model_dump(mode="json"))).status_code == 202

        async def all_handled() -> bool:
            return sum(map(len, order.values())) >= len(events)

        await eventually(all_handled, within=60)
    assert overlaps == [], "two events of one key were handled at the same time"
    for key in keys:
        published = [str(event.event_id) for event in events if TOPIC.key_of(event) == key.encode()]
        assert order[key.encode()] == published, "a key's events were handled out of order"
    assert most_at_once >= 2, "the other keys of the partition waited instead of proceeding"
