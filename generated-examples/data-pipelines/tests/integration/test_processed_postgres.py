"""The shared processed-id store on a real PostgreSQL: what one pod handled, another pod of the group skips, even
while the first is still handling it; a failure leaves the id free; old ids expire."""

import asyncio
import importlib.util
import os
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from order_pipelines import app as app_module
from order_pipelines.events.catalog import CONSUMED_TOPICS, Topic
from order_pipelines.events.models import Event
from order_pipelines.kafka import runners
from order_pipelines.kafka.consumer import ConsumerRunner, Handler
from order_pipelines.processed_postgres import PostgresProcessedEvents
from tests.samples import ROUTES, sample_event, unique_key

from .service import eventually, running_service, service_settings

pytestmark = pytest.mark.integration

TOPIC = CONSUMED_TOPICS[0]
ROUTE = ROUTES[TOPIC.name]
LAUNCHER = Path(__file__).resolve().parents[2] / "scripts" / "kafka_stack.py"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """DATABASE_URL when set, else PostgreSQL alone from the project's launcher for this session."""
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    spec = importlib.util.spec_from_file_location("kafka_stack", LAUNCHER)
    assert spec is not None
    assert spec.loader is not None
    launcher = sys.modules.setdefault(spec.name, importlib.util.module_from_spec(spec))
    spec.loader.exec_module(launcher)
    stack = launcher.Stack(tmp_path_factory.mktemp("postgres"))
    try:
        yield str(stack.up(["postgres"])["DATABASE_URL"])
    finally:
        stack.down()


@pytest.fixture
async def store(database_url: str, unique: str) -> AsyncIterator[PostgresProcessedEvents]:
    processed = PostgresProcessedEvents(database_url, f"test-{unique}", retention_hours=1, pool_size=2)
    await processed.open()
    try:
        yield processed
    finally:
        await processed.close()


async def test_another_pod_waits_for_an_event_in_hand_then_skips_it(
    database_url: str, store: PostgresProcessedEvents, unique: str
) -> None:
    other_pod = PostgresProcessedEvents(database_url, f"test-{unique}", retention_hours=1, pool_size=2)
    await other_pod.open()
    event_id = uuid.uuid4()
    handling = asyncio.Event()
    finish = asyncio.Event()

    async def first_pod() -> bool:
        async with store.once(event_id) as first:
            handling.set()
            await finish.wait()
            return first

    async def second_pod() -> bool:
        await handling.wait()
        async with other_pod.once(event_id) as first:
            return first

    try:
        first, second = asyncio.create_task(first_pod()), asyncio.create_task(second_pod())
        await handling.wait()
        done, _ = await asyncio.wait([second], timeout=1)
        assert not done, "the second pod must wait while the first handles the event"
        finish.set()
        assert await first is True
        assert await second is False, "committed by the first pod: the second skips it"
    finally:
        await other_pod.close()


async def test_the_wait_for_another_pods_row_lock_is_bounded_and_said_then_resumed(
    database_url: str, store: PostgresProcessedEvents, unique: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A pod cut off from Kafka keeps its row locked until its bounded wait for acks ends: the new owner of the
    partition waits `lock_timeout` at a time, says so, and goes on once the row is free."""
    other_pod = PostgresProcessedEvents(
        database_url, f"test-{unique}", retention_hours=1, pool_size=2, lock_timeout_seconds=0.2
    )
    await other_pod.open()
    event_id = uuid.uuid4()
    handling = asyncio.Event()
    finish = asyncio.Event()

    async def first_pod() -> bool:
        async with store.once(event_id) as first:
            handling.set()
            await finish.wait()
            return first

    async def second_pod() -> bool:
        await handling.wait()
        async with other_pod.once(event_id) as first:
            return first

    async def waiting_said() -> bool:
        return any("still being processed elsewhere" in message for message in caplog.messages)

    try:
        with caplog.at_level("WARNING"):
            first, second = asyncio.create_task(first_pod()), asyncio.create_task(second_pod())
            await eventually(waiting_said, within=30)
            assert not second.done()
            finish.set()
            assert await first is True
            assert await second is False
    finally:
        await other_pod.close()


async def test_a_failed_handling_leaves_the_id_free_for_the_retry(store: PostgresProcessedEvents) -> None:
    event_id = uuid.uuid4()

    async def failing_handling() -> None:
        async with store.once(event_id):
            raise RuntimeError("handler failed")

    with pytest.raises(RuntimeError):
        await failing_handling()
    assert not await store.contains(event_id)
    async with store.once(event_id) as first:
        assert first
    assert await store.contains(event_id)


async def test_ids_older_than_the_retention_are_forgotten(database_url: str, store: PostgresProcessedEvents) -> None:
    old, recent = uuid.uuid4(), uuid.uuid4()
    for event_id in (old, recent):
        async with store.once(event_id):
            pass
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute(
            "UPDATE processed_events SET processed_at = now() - interval '2 hours' WHERE event_id = $1", old
        )
    finally:
        await connection.close()
    assert await store.expire() == 1
    assert not await store.contains(old)
    assert await store.contains(recent)


async def test_an_event_redelivered_to_another_pod_is_not_handled_again(
    kafka_bootstrap: str, database_url: str, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pod one handles an event and stops; the group's offset goes back before it (as after a crash before the
    commit); pod two, a different process in a deployment, shares only the store, and must skip it."""
    handled: Counter[str] = Counter()
    create_runner = runners.create_runner

    def counting(handler: Handler) -> Handler:
        async def handle(topic: Topic, event: Event) -> Sequence[Event]:
            handled[str(event.event_id)] += 1
            return await handler(topic, event)

        return handle

    def runner(settings: Any, serde: Any, handler: Handler, producer: Any, hooks: Any) -> ConsumerRunner:
        return create_runner(settings, serde, counting(handler), producer, hooks)

    monkeypatch.setattr(app_module, "create_runner", runner)

    async def handled_once(event: Event) -> bool:
        return handled[str(event.event_id)] == 1

    settings = service_settings(kafka_bootstrap, unique, processed_events_url=database_url)
    event = sample_event(TOPIC, key=unique_key(TOPIC))
    async with running_service(settings) as pod_one:
        published = (await pod_one.post(ROUTE, json=event.model_dump(mode="json"))).json()
        await eventually(lambda: handled_once(event))
    await rewind(kafka_bootstrap, settings.kafka_consumer_group, published["partition"], published["offset"])
    marker = sample_event(TOPIC, key=TOPIC.key_of(event).decode())
    async with running_service(settings) as pod_two:
        assert (await pod_two.post(ROUTE, json=marker.model_dump(mode="json"))).status_code == 202
        await eventually(lambda: handled_once(marker))
    assert handled[str(event.event_id)] == 1, "redelivered to another pod, handled once"


async def rewind(bootstrap: str, group: str, partition: int, offset: int) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(TOPIC.name, partition)
        consumer.assign([tp])
        await consumer.commit({tp: offset})
    finally:
        await consumer.stop()
