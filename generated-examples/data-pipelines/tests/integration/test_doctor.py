"""`doctor` against the real broker: each condition reproduced for real, and named."""

import asyncio
import json
import os
import re
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from order_pipelines.dispatch import Dispatcher
from order_pipelines.events.catalog import CONSUMED_TOPICS, Topic
from order_pipelines.events.models import Event
from order_pipelines.observability.diagnosis import Finding
from order_pipelines.observability.doctor import CHECKS, Report, diagnose
from order_pipelines.settings import Settings
from tests.aiokafka_options import aiokafka_options
from tests.samples import ROUTES, sample_event, unique_key

from .kafka_io import committed_offsets, find_record
from .service import eventually, running_service, service_settings

pytestmark = pytest.mark.integration

TOPIC = CONSUMED_TOPICS[0]
ROUTE = ROUTES[TOPIC.name]


def finding(report: Report, check: str) -> Finding:
    (found,) = [f for f in report.findings if f.check == check]
    return found


async def produce(settings: Settings, key: str, count: int, value: bytes = b"raw") -> None:
    producer = AIOKafkaProducer(**aiokafka_options(settings), acks="all")
    await producer.start()
    try:
        for _ in range(count):
            await producer.send(TOPIC.name, value, key=key.encode())
        await producer.flush()
    finally:
        await producer.stop()


async def test_a_healthy_service_is_reported_healthy_and_exits_zero(kafka_bootstrap: str, unique: str) -> None:
    settings = service_settings(kafka_bootstrap, unique)
    key = unique_key(TOPIC)
    async with running_service(settings) as client:
        assert (await client.post(ROUTE, json=sample_event(TOPIC, key=key).model_dump(mode="json"))).status_code == 202
        await eventually(lambda: consumed(client, key), within=180)
        doctor = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "order_pipelines", "doctor", "--window", "3", "--interval", "1", "--json"),
            env=os.environ | {"KAFKA_CONSUMER_GROUP": settings.kafka_consumer_group},
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await doctor.communicate()
    report = json.loads(out)
    assert doctor.returncode == 0, json.dumps(report, indent=2)
    assert report["healthy"] is True
    assert {f["check"]: f["severity"] for f in report["findings"]} == {"describe": "ok", "lag": "ok", "group": "ok"}


async def consumed(client: httpx.AsyncClient, key: str) -> bool:
    return (await client.get(f"{ROUTE}/{key}")).status_code == 200


async def committed_past(bootstrap: str, group: str, partition: TopicPartition, offset: int) -> bool:
    return (await committed_offsets(bootstrap, group, [partition]))[partition] > offset


async def test_lag_of_a_stopped_consumer_while_events_keep_coming_is_named_stop(
    kafka_bootstrap: str, unique: str
) -> None:
    settings = service_settings(kafka_bootstrap, unique)
    key = unique_key(TOPIC)
    async with running_service(settings) as client:
        assert (await client.post(ROUTE, json=sample_event(TOPIC, key=key).model_dump(mode="json"))).status_code == 202
        await eventually(lambda: consumed(client, key), within=180)
    # The consumer is stopped; events keep arriving while doctor watches.
    producing = asyncio.create_task(produce_steadily(settings, seconds=3))
    report = await diagnose(settings, ["lag"], window=3, interval=1)
    await producing
    lag = finding(report, "lag")
    assert lag.severity == "error"
    assert lag.title.startswith("lag STOP: "), lag.title
    assert settings.kafka_consumer_group in lag.title
    assert "consumer is not running" in lag.why
    assert "python -m order_pipelines worker" in lag.do
    rows = [row for row in lag.details if row.startswith(TOPIC.name)]
    assert any(" STOP " in row and re.search(r" \+[1-9]\d*  ", row) for row in rows), "\n".join(lag.details)


async def produce_steadily(settings: Settings, seconds: float) -> None:
    for _ in range(int(seconds * 10)):
        await produce(settings, unique_key(TOPIC), 1)
        await asyncio.sleep(0.1)


async def test_a_poison_handler_retried_over_and_over_is_named_a_stall_with_its_hot_key(
    kafka_bootstrap: str, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = unique_key(TOPIC)
    poison = sample_event(TOPIC, key=key)
    attempts = asyncio.Event()
    original = Dispatcher.__call__

    async def failing_on_poison(self: Dispatcher, topic: Topic, event: Event) -> Sequence[Event]:
        if event.event_id == poison.event_id:
            attempts.set()
            raise RuntimeError("downstream rejects this event")
        return await original(self, topic, event)

    monkeypatch.setattr(Dispatcher, "__call__", failing_on_poison)
    settings = service_settings(
        kafka_bootstrap,
        unique,
        handler_max_attempts=10_000,
        handler_retry_backoff_seconds=0.2,
        shutdown_timeout_seconds=2,
    )
    async with running_service(settings) as client:
        # First through whatever the topic holds already (a new group starts from the earliest offset), so that the
        # group's commits stand right before the poison message.
        caught_up = sample_event(TOPIC, key=key)
        assert (await client.post(ROUTE, json=caught_up.model_dump(mode="json"))).status_code == 202
        await eventually(lambda: consumed(client, key), within=180)
        # And committed: a commit landing within the doctor's window would be progress, and no stall.
        record = await find_record(kafka_bootstrap, TOPIC.name, TOPIC.key_of(caught_up))
        partition = TopicPartition(TOPIC.name, record.partition)
        group = settings.kafka_consumer_group
        await eventually(lambda: committed_past(kafka_bootstrap, group, partition, record.offset), within=60)
        assert (await client.post(ROUTE, json=poison.model_dump(mode="json"))).status_code == 202
        await asyncio.wait_for(attempts.wait(), 60)
        # Behind the poison message, on its partition: its key's next events wait.
        for _ in range(20):
            event = sample_event(TOPIC, key=key)
            assert (await client.post(ROUTE, json=event.model_dump(mode="json"))).status_code == 202
        report = await diagnose(settings, ["lag"], window=3, interval=1)
    lag = finding(report, "lag")
    assert lag.severity == "error"
    assert lag.title.startswith("lag STALL: "), lag.title
    assert "keeps retrying" in lag.why
    assert any(row.startswith(TOPIC.name) and " STALL " in row for row in lag.details), "\n".join(lag.details)
    assert any(line.startswith(f"hot key: {key!r}") for line in lag.details), "\n".join(lag.details)


@asynccontextmanager
async def slow_members(settings: Settings, count: int) -> AsyncIterator[None]:
    """`count` consumers in the service's group, with its credentials, whose 'handler' takes longer than their
    max.poll.interval.ms."""

    async def member() -> None:
        consumer = AIOKafkaConsumer(
            TOPIC.name,
            **aiokafka_options(settings),
            group_id=settings.kafka_consumer_group,
            enable_auto_commit=False,
            max_poll_interval_ms=1500,
            session_timeout_ms=6000,
            heartbeat_interval_ms=300,
        )
        await consumer.start()
        try:
            while True:
                await consumer.getmany(timeout_ms=200)
                await asyncio.sleep(2.5)  # slower than max.poll.interval.ms: expelled, then rejoins
        finally:
            await consumer.stop()

    members = [asyncio.create_task(member()) for _ in range(count)]
    try:
        yield
    finally:
        for task in members:
            task.cancel()
        await asyncio.gather(*members, return_exceptions=True)


async def test_members_slower_than_max_poll_interval_are_named_a_rebalancing_storm(
    kafka_bootstrap: str, unique: str
) -> None:
    settings: Settings = service_settings(kafka_bootstrap, unique)
    async with slow_members(settings, count=2):
        report = await diagnose(settings, ["group"], window=15, interval=0.5)
    group = finding(report, "group")
    assert group.severity == "error", group.details
    assert group.title.startswith(f"rebalancing storm: group {settings.kafka_consumer_group}"), group.title
    assert "max.poll.interval.ms" in group.why
    assert "event loop" in group.do
    assert "CONSUMER_MAX_RECORDS" not in group.do


def test_every_check_is_one_doctor_runs_by_default() -> None:
    assert set(CHECKS) == {"lag", "describe", "group"}
