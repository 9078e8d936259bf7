"""Exactly-once: what a batch writes (emitted events, dead letters, offsets) commits or aborts as one, and
read_committed readers never see an aborted write."""

import asyncio
import functools
import gc
import time
from collections import Counter
from typing import Any

import pytest
from aiokafka import TopicPartition as Partition
from aiokafka.errors import KafkaError
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka import KafkaError as LibrdkafkaError
from confluent_kafka.schema_registry import AsyncSchemaRegistryClient
from prometheus_client import REGISTRY

from agent_ops.events.avro import AvroSerde
from agent_ops.events.catalog import AGENT_TASK_HISTORY, CONSUMED_TOPICS, Topic
from agent_ops.kafka import dead_letters
from agent_ops.kafka.aiokafka_client import transactional_id
from agent_ops.kafka.dead_letters import send_dead_letter
from agent_ops.kafka.producer import event_headers
from agent_ops.settings import Settings
from tests.samples import ROUTES, sample_event, unique_key

from .kafka_io import committed_offsets, end_offsets, produce_raw, read_topic, start_group_at_the_end
from .service import eventually, running_service, service_settings

pytestmark = pytest.mark.integration

TOPIC = CONSUMED_TOPICS[0]
ROUTE = ROUTES[TOPIC.name]


async def test_an_aborted_dead_letter_is_never_seen_by_read_committed_readers(
    kafka_bootstrap: str, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    poison_key = unique_key(TOPIC).encode()
    failures: list[int] = []

    async def written_then_aborted_once(producer: Any, record: Any, error: Exception, attempts: int) -> Any:
        delivery = await send_dead_letter(producer, record, error, attempts)
        if record.key == poison_key and not failures:
            failures.append(record.offset)
            await delivery  # the dead letter is in the log, inside the open transaction, when it aborts
            raise KafkaError("simulated failure before commit")
        return delivery

    def dead(records: list[Any]) -> list[Any]:
        return [r for r in records if r.key == poison_key]

    async def dead_letter_committed() -> bool:
        return bool(dead(await read_topic(kafka_bootstrap, TOPIC.dead_letter, TOPIC.partitions, "read_committed")))

    monkeypatch.setattr(dead_letters, "send_dead_letter", written_then_aborted_once)
    async with running_service(service_settings(kafka_bootstrap, unique)) as client:
        await produce_raw(kafka_bootstrap, TOPIC.name, b"\x00 not an event", key=poison_key)
        marker = sample_event(TOPIC, key=poison_key.decode())
        assert (await client.post(ROUTE, json=marker.model_dump(mode="json"))).status_code == 202

        async def marker_consumed() -> bool:
            seen = await client.get(f"{ROUTE}/{poison_key.decode()}")
            return seen.status_code == 200 and seen.json()["event_id"] == str(marker.event_id)

        await eventually(marker_consumed)
        # Handlers run before their transaction: the marker's handling says nothing about the retry's commit.
        await eventually(dead_letter_committed)
    assert failures, "the first transaction was not made to fail"

    uncommitted = dead(await read_topic(kafka_bootstrap, TOPIC.dead_letter, TOPIC.partitions))
    committed = dead(await read_topic(kafka_bootstrap, TOPIC.dead_letter, TOPIC.partitions, "read_committed"))
    assert len(uncommitted) == 2, "the aborted attempt and the committed retry are both in the log"
    assert len(committed) == 1, "a read_committed reader sees the dead letter once"
    assert dict(committed[0].headers)["dlq.original.offset"] == str(failures[0]).encode()


async def test_each_event_emits_its_effect_exactly_once_in_the_consumed_offsets_transaction(
    kafka_bootstrap: str, unique: str
) -> None:
    events = [sample_event(TOPIC, key=unique_key(TOPIC)) for _ in range(20)]
    causes = {str(event.event_id).encode() for event in events}
    async with running_service(service_settings(kafka_bootstrap, unique)) as client:
        for event in events:
            assert (await client.post(ROUTE, json=event.model_dump(mode="json"))).status_code == 202

        async def all_emitted() -> bool:
            records = await read_topic(
                kafka_bootstrap, AGENT_TASK_HISTORY.name, AGENT_TASK_HISTORY.partitions, "read_committed"
            )
            return causes <= {dict(r.headers).get("causation-id") for r in records}

        await eventually(all_emitted)
    records = await read_topic(
        kafka_bootstrap, AGENT_TASK_HISTORY.name, AGENT_TASK_HISTORY.partitions, "read_committed"
    )
    emitted = [dict(r.headers)["causation-id"] for r in records if dict(r.headers).get("causation-id") in causes]
    assert sorted(emitted) == sorted(causes), "one emitted event per consumed event, none twice"


def librdkafka(bootstrap: str) -> dict[str, Any]:
    """confluent-kafka's connection settings."""
    return {"bootstrap.servers": bootstrap}


def effects_counted_by_librdkafka(bootstrap: str, topic: Topic) -> Counter[bytes]:
    """How many emitted events on `topic` each cause has, as librdkafka (confluent-kafka) reads them in
    read_committed: a client other than the one under test, so its transaction filtering cannot hide a bug."""
    consumer = Consumer(
        librdkafka(bootstrap)
        | {
            "group.id": "effects-count",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    consumer.assign([TopicPartition(topic.name, p, OFFSET_BEGINNING) for p in range(topic.partitions)])
    causes: Counter[bytes] = Counter()
    at_end: set[int | None] = set()
    # consume() waits its whole timeout unless it fills the batch: short polls, under one deadline.
    deadline = time.monotonic() + 60
    try:
        while len(at_end) < topic.partitions:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic.name}: {len(at_end)} of {topic.partitions} partitions read to the end")
            for message in consumer.consume(num_messages=1000, timeout=0.5):
                error = message.error()
                if error is not None and error.code() == LibrdkafkaError._PARTITION_EOF:
                    at_end.add(message.partition())
                elif error is not None:
                    raise RuntimeError(f"librdkafka: {error}")
                else:
                    at_end.discard(message.partition())
                    cause = dict(message.headers() or []).get("causation-id")
                    if isinstance(cause, bytes):
                        causes[cause] += 1
    finally:
        consumer.close()
    return causes


async def post_all(client: Any, events: list[Any]) -> None:
    for event in events:
        assert (await client.post(ROUTE, json=event.model_dump(mode="json"))).status_code == 202


async def wait_until_committed(bootstrap: str, group: str) -> None:
    """Until `group` committed past every record on the consumed topic now: it has nothing left to do."""
    ends = await end_offsets(bootstrap, TOPIC.name, TOPIC.partitions)

    async def caught_up() -> bool:
        committed = await committed_offsets(bootstrap, group, list(ends))
        return all(committed[tp] >= end for tp, end in ends.items())

    await eventually(caught_up, within=90)


def effects_of(events: list[Any], counts: Counter[bytes]) -> list[int]:
    return [counts[str(event.event_id).encode()] for event in events]


async def test_a_new_group_on_a_backlog_emits_one_effect_per_event_as_librdkafka_counts(
    kafka_bootstrap: str, unique: str
) -> None:
    events = [sample_event(TOPIC, key=unique_key(TOPIC)) for _ in range(200)]
    publisher = service_settings(kafka_bootstrap, unique, consumer_enabled=False)
    async with running_service(publisher) as client:
        await start_group_at_the_end(kafka_bootstrap, publisher.kafka_consumer_group, TOPIC.name, TOPIC.partitions)
        await post_all(client, events)
    settings = service_settings(kafka_bootstrap, unique)
    async with running_service(settings):
        await wait_until_committed(kafka_bootstrap, settings.kafka_consumer_group)
    counts = await asyncio.to_thread(effects_counted_by_librdkafka, kafka_bootstrap, AGENT_TASK_HISTORY)
    assert effects_of(events, counts) == [1] * len(events)


def transactions_committed() -> float:
    return REGISTRY.get_sample_value("messaging_kafka_transactions_total", {"outcome": "committed"}) or 0.0


@pytest.mark.parametrize(
    ("interval_ms", "max_records"),
    [pytest.param(5_000, 1000, id="shared-within-the-interval"), pytest.param(0, 7, id="bounded-in-records")],
)
async def test_a_backlog_commits_in_transactions_shared_by_many_records_and_bounded_in_size(
    kafka_bootstrap: str, unique: str, interval_ms: int, max_records: int
) -> None:
    """Under load, records handled within one transaction interval share a transaction (a backlog does not cost a
    transaction per record), no transaction holds more than `transaction_max_records`, and each effect is still
    written once."""
    events = [sample_event(TOPIC, key=unique_key(TOPIC)) for _ in range(200)]
    publisher = service_settings(kafka_bootstrap, unique, consumer_enabled=False)
    async with running_service(publisher) as client:
        # The backlog is these 200 events alone, whatever the topic held before.
        await start_group_at_the_end(kafka_bootstrap, publisher.kafka_consumer_group, TOPIC.name, TOPIC.partitions)
        await post_all(client, events)
    settings = service_settings(
        kafka_bootstrap, unique, transaction_interval_ms=interval_ms, transaction_max_records=max_records
    )
    before = transactions_committed()
    async with running_service(settings):
        await wait_until_committed(kafka_bootstrap, settings.kafka_consumer_group)
    transactions = transactions_committed() - before
    if interval_ms:
        # A transaction as soon as the first records are handled, then one per interval: the backlog is handled
        # within a few intervals even on a slow machine, so a handful per partition, far fewer than 200.
        assert transactions <= 4 * TOPIC.partitions
    else:
        assert transactions >= len(events) / max_records
    counts = await asyncio.to_thread(effects_counted_by_librdkafka, kafka_bootstrap, AGENT_TASK_HISTORY)
    assert effects_of(events, counts) == [1] * len(events)


async def test_a_member_joining_mid_stream_emits_no_effect_twice_as_librdkafka_counts(
    kafka_bootstrap: str, unique: str
) -> None:
    events = [sample_event(TOPIC, key=unique_key(TOPIC)) for _ in range(200)]
    settings = service_settings(kafka_bootstrap, unique)
    async with running_service(settings) as first:
        await post_all(first, events[:100])
        async with running_service(settings) as second:
            await post_all(second, events[100:])
            await wait_until_committed(kafka_bootstrap, settings.kafka_consumer_group)
    counts = await asyncio.to_thread(effects_counted_by_librdkafka, kafka_bootstrap, AGENT_TASK_HISTORY)
    assert effects_of(events, counts) == [1] * len(events)


async def test_two_groups_on_one_input_never_fence_each_other(kafka_bootstrap: str, unique: str) -> None:
    """Transactional ids carry the group: each group emits its own effect of every event."""
    events = [sample_event(TOPIC, key=unique_key(TOPIC)) for _ in range(100)]
    one, other = service_settings(kafka_bootstrap, f"{unique}-a"), service_settings(kafka_bootstrap, f"{unique}-b")
    async with running_service(one) as client, running_service(other):
        await post_all(client, events)
        await wait_until_committed(kafka_bootstrap, one.kafka_consumer_group)
        await wait_until_committed(kafka_bootstrap, other.kafka_consumer_group)
    counts = await asyncio.to_thread(effects_counted_by_librdkafka, kafka_bootstrap, AGENT_TASK_HISTORY)
    assert effects_of(events, counts) == [2] * len(events)


def fence(bootstrap: str, settings: Settings, partition: int) -> None:
    """What a zombie of the worker, or the partition's next owner, does: initialise a producer with the worker's
    own transactional id for `partition`. The worker's producer is fenced, its open transaction aborted."""
    tp = Partition(TOPIC.name, partition)
    zombie = Producer(librdkafka(bootstrap) | {"transactional.id": transactional_id(settings, tp)})
    zombie.init_transactions(60)


async def committed_total(bootstrap: str, group: str) -> int:
    partitions = [Partition(TOPIC.name, p) for p in range(TOPIC.partitions)]
    return sum((await committed_offsets(bootstrap, group, partitions)).values())


async def test_producers_fenced_mid_stream_skip_no_record_and_repeat_none_as_librdkafka_counts(
    kafka_bootstrap: str, unique: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A failed transaction (here its producer fenced, as a zombie or a transaction timeout does) is read again
    from the committed offset: records fetched while the partition was prepared again are neither skipped as
    already seen nor handled twice. And every write of the failed transaction is awaited: no delivery failure is
    left unretrieved."""
    rounds = 5
    events = [sample_event(TOPIC, key=unique_key(TOPIC)) for _ in range(rounds * 100)]
    settings = service_settings(
        kafka_bootstrap, unique, consumer_max_records=20, transaction_max_records=10, transaction_interval_ms=0
    )
    group = settings.kafka_consumer_group
    unretrieved: list[str] = []
    # What earlier tests of the session left to the collector (a client abandoned in the broker outage test) is
    # reported before this test listens; the loop's own handler is back when it ends.
    gc.collect()
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: unretrieved.append(repr(context)))
    try:
        async with running_service(settings) as client:
            for chunk in range(rounds):
                # Fences land while the chunk is fetched and handled, and each fences every partition's producer.
                progress = await committed_total(kafka_bootstrap, group)
                await post_all(client, events[chunk * 100 : (chunk + 1) * 100])
                await eventually(functools.partial(moved_past, kafka_bootstrap, group, progress), within=60)
                for partition in range(TOPIC.partitions):
                    await asyncio.to_thread(fence, kafka_bootstrap, settings, partition)
                await wait_until_committed(kafka_bootstrap, group)
        counts = await asyncio.to_thread(effects_counted_by_librdkafka, kafka_bootstrap, AGENT_TASK_HISTORY)
        assert effects_of(events, counts) == [1] * len(events), "each event's effect once: none skipped, none repeated"
        assert transactions_aborted() > 0, "no transaction was made to fail"
        caplog.clear()  # its records hold the failed transactions' errors, and through them their futures
        gc.collect()  # a future whose exception nobody retrieved says so when it is collected
    finally:
        loop.set_exception_handler(previous)
    assert not unretrieved, unretrieved


async def moved_past(bootstrap: str, group: str, progress: int) -> bool:
    return await committed_total(bootstrap, group) > progress


def transactions_aborted() -> float:
    return REGISTRY.get_sample_value("messaging_kafka_transactions_total", {"outcome": "aborted"}) or 0.0


async def test_a_transactional_input_is_committed_past_its_commit_markers_so_the_group_lag_is_zero_at_rest(
    kafka_bootstrap: str, schema_registry_url: str, unique: str
) -> None:
    """Inputs written in transactions (another exactly-once service's outputs, say) are each followed by a commit
    marker: the group commits past it once every record is handled, or its lag reads 1 for ever."""
    settings = service_settings(kafka_bootstrap, unique)
    events = [sample_event(TOPIC, key=unique_key(TOPIC)) for _ in range(30)]
    async with AsyncSchemaRegistryClient({"url": schema_registry_url}) as registry:
        serde = AvroSerde(registry, settings.schema_subject_strategy, True)
        values = [await serde.serialize(TOPIC, event) for event in events]

    def produce_in_transactions() -> None:
        upstream = Producer(librdkafka(kafka_bootstrap) | {"transactional.id": f"upstream-{unique}"})
        upstream.init_transactions(60)
        for event, value in zip(events, values, strict=True):
            upstream.begin_transaction()
            headers: list[tuple[str, str | bytes | None]] = list(event_headers(event))
            upstream.produce(TOPIC.name, value, key=TOPIC.key_of(event), headers=headers)
            upstream.commit_transaction(60)

    await asyncio.to_thread(produce_in_transactions)
    async with running_service(settings):
        await wait_until_committed(kafka_bootstrap, settings.kafka_consumer_group)
    counts = await asyncio.to_thread(effects_counted_by_librdkafka, kafka_bootstrap, AGENT_TASK_HISTORY)
    assert effects_of(events, counts) == [1] * len(events)
