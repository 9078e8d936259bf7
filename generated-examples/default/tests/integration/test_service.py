"""The service end to end against a real broker: HTTP in, Kafka, the service's own consumer, HTTP out."""

import re

import pytest
from aiokafka import TopicPartition

from agent_tasks.events.catalog import CONSUMED_TOPICS
from agent_tasks.events.models import Event
from agent_tasks.handlers import EventHandlers
from tests.samples import ROUTES, sample_event, unique_key

from .kafka_io import committed_offsets, end_offsets, find_record, produce_raw
from .service import eventually, running_service, service_settings

pytestmark = pytest.mark.integration

TOPIC = CONSUMED_TOPICS[0]
ROUTE = ROUTES[TOPIC.name]


async def test_an_event_posted_over_http_is_consumed_by_the_service(kafka_bootstrap: str, unique: str) -> None:
    key = unique_key(TOPIC)
    event = sample_event(TOPIC, key=key)
    async with running_service(service_settings(kafka_bootstrap, unique)) as client:
        response = await client.post(ROUTE, json=event.model_dump(mode="json"))
        assert response.status_code == 202, response.text
        assert response.json()["topic"] == TOPIC.name
        assert response.json()["offset"] >= 0

        async def consumed() -> bool:
            seen = await client.get(f"{ROUTE}/{key}")
            return seen.status_code == 200 and seen.json()["event_id"] == str(event.event_id)

        await eventually(consumed)


async def test_shutdown_commits_every_processed_event(kafka_bootstrap: str, unique: str) -> None:
    settings = service_settings(kafka_bootstrap, unique)
    keys = [unique_key(TOPIC) for _ in range(20)]
    positions: list[TopicPartition] = []
    offsets: list[int] = []
    async with running_service(settings) as client:
        for key in keys:
            response = await client.post(ROUTE, json=sample_event(TOPIC, key=key).model_dump(mode="json"))
            assert response.status_code == 202
            positions.append(TopicPartition(TOPIC.name, response.json()["partition"]))
            offsets.append(response.json()["offset"])

        async def all_consumed() -> bool:
            statuses = [(await client.get(f"{ROUTE}/{key}")).status_code for key in keys]
            return statuses == [200] * len(keys)

        await eventually(all_consumed)
    committed = await committed_offsets(kafka_bootstrap, settings.kafka_consumer_group, sorted(set(positions)))
    # A committed offset is the next one to read: past every event that was processed.
    assert all(committed[tp] > offset for tp, offset in zip(positions, offsets, strict=True))


async def test_a_poison_message_goes_to_the_dead_letter_topic_and_the_partition_keeps_flowing(
    kafka_bootstrap: str, unique: str
) -> None:
    poison_key = unique_key(TOPIC)
    async with running_service(service_settings(kafka_bootstrap, unique)) as client:
        await produce_raw(kafka_bootstrap, TOPIC.name, b"\x00 this is not an event", key=poison_key.encode())
        # Same key, so same partition, right behind the poison message.
        event = sample_event(TOPIC, key=poison_key)
        assert (await client.post(ROUTE, json=event.model_dump(mode="json"))).status_code == 202

        async def consumed() -> bool:
            return (await client.get(f"{ROUTE}/{poison_key}")).status_code == 200

        await eventually(consumed)
    dead = await find_record(kafka_bootstrap, TOPIC.dead_letter, poison_key.encode())
    headers = dict(dead.headers)
    assert dead.value == b"\x00 this is not an event"
    assert headers["dlq.original.topic"] == TOPIC.name.encode()
    assert headers["dlq.error.type"] == b"DeserializationError"
    assert int(headers["dlq.original.offset"]) >= 0
    assert int(headers["dlq.original.partition"]) in range(TOPIC.partitions)


async def test_a_failing_handler_is_retried_then_dead_lettered(
    kafka_bootstrap: str, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = sample_event(TOPIC, key=unique_key(TOPIC))
    handler_name = "on_" + re.sub(r"(?<!^)(?=[A-Z])", "_", type(event).__name__).lower()
    calls: list[str] = []

    original = getattr(EventHandlers, handler_name)

    async def failing_for_this_event(self: EventHandlers, received: Event) -> list[Event]:
        if received.event_id != event.event_id:
            emitted: list[Event] = await original(self, received)
            return emitted
        calls.append(str(received.event_id))
        raise RuntimeError("downstream unavailable")

    monkeypatch.setattr(EventHandlers, handler_name, failing_for_this_event)
    settings = service_settings(kafka_bootstrap, unique, handler_max_attempts=3)
    async with running_service(settings) as client:
        assert (await client.post(ROUTE, json=event.model_dump(mode="json"))).status_code == 202
        dead = await find_record(kafka_bootstrap, TOPIC.dead_letter, TOPIC.key_of(event))
    headers = dict(dead.headers)
    assert headers["dlq.error.type"] == b"RuntimeError"
    assert headers["dlq.error.message"] == b"downstream unavailable"
    assert headers["dlq.attempts"] == b"3"
    assert headers["event-id"] == str(event.event_id).encode()
    assert calls.count(str(event.event_id)) == 3


async def test_readiness_reports_each_partitions_lag(kafka_bootstrap: str, unique: str) -> None:
    key = unique_key(TOPIC)
    async with running_service(service_settings(kafka_bootstrap, unique)) as client:
        assert (await client.post(ROUTE, json=sample_event(TOPIC, key=key).model_dump(mode="json"))).status_code == 202

        async def caught_up() -> bool:
            if (await client.get(f"{ROUTE}/{key}")).status_code != 200:
                return False
            lag = (await client.get("/health/ready")).json()["lag"]
            every = {f"{topic.name}[{p}]" for topic in CONSUMED_TOPICS for p in range(topic.partitions)}
            return set(lag) == every and set(lag.values()) == {0}

        await eventually(caught_up)


async def test_a_new_group_works_through_a_backlog_it_did_not_see_arrive(kafka_bootstrap: str, unique: str) -> None:
    """Records fetched while the group is still being set up are the first a new member sees: none may be lost."""
    keys = [unique_key(TOPIC) for _ in range(300)]
    async with running_service(service_settings(kafka_bootstrap, unique, consumer_enabled=False)) as client:
        for key in keys:
            response = await client.post(ROUTE, json=sample_event(TOPIC, key=key).model_dump(mode="json"))
            assert response.status_code == 202, response.text
    ends = await end_offsets(kafka_bootstrap, TOPIC.name, TOPIC.partitions)

    settings = service_settings(kafka_bootstrap, unique)
    async with running_service(settings) as client:

        async def every_key_consumed() -> bool:
            statuses = [(await client.get(f"{ROUTE}/{key}")).status_code for key in keys]
            return statuses == [200] * len(keys)

        await eventually(every_key_consumed, within=90)

        async def backlog_committed() -> bool:
            committed = await committed_offsets(kafka_bootstrap, settings.kafka_consumer_group, list(ends))
            return all(committed[tp] >= end for tp, end in ends.items())

        await eventually(backlog_committed)


async def test_a_member_joining_mid_stream_takes_partitions_over_without_losing_events(
    kafka_bootstrap: str, unique: str
) -> None:
    """A second member's join is a real rebalance: partitions move between two live consumers mid-stream."""
    first_keys = [unique_key(TOPIC) for _ in range(100)]
    later_keys = [unique_key(TOPIC) for _ in range(100)]
    settings = service_settings(kafka_bootstrap, unique)
    async with running_service(settings) as first:
        for key in first_keys:
            response = await first.post(ROUTE, json=sample_event(TOPIC, key=key).model_dump(mode="json"))
            assert response.status_code == 202
        async with running_service(settings) as second:
            for key in later_keys:
                response = await second.post(ROUTE, json=sample_event(TOPIC, key=key).model_dump(mode="json"))
                assert response.status_code == 202

            async def every_key_consumed_by_one_of_them() -> bool:
                for key in first_keys + later_keys:
                    statuses = {(await client.get(f"{ROUTE}/{key}")).status_code for client in (first, second)}
                    if 200 not in statuses:
                        return False
                return True

            await eventually(every_key_consumed_by_one_of_them, within=90)
            assignments = [(await client.get("/health/ready")).json()["lag"] for client in (first, second)]
    assert all(assignments), "both members own partitions after the rebalance"
