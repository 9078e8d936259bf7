"""The audit log against the real broker: every event published and processed is sealed with its correlation,
`audit verify` holds on a real log and names the offset of a record forged by another client, and fails while the
intake holds entries left unsealed. The sealer dead-letters intake records that are not entries, aborts a
transaction one of whose records the broker refused, starts over after an error escaped its loop, and leaves its
group no lag at rest."""

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError
from confluent_kafka import Producer
from prometheus_client import REGISTRY

from agent_ops.correlation import HTTP_HEADER
from agent_ops.events.catalog import TOPICS
from agent_ops.patterns.audit import cli, names
from agent_ops.patterns.audit import plugin as audit_plugin
from agent_ops.patterns.audit.intake import record_processed
from agent_ops.patterns.audit.sealer import AuditSealer
from agent_ops.patterns.audit.settings import get_audit_settings
from agent_ops.settings import Settings, get_settings
from tests.samples import ROUTES, sample_event, unique_key

from .hostile_records import dead_letters, lag, librdkafka, write_hostile
from .kafka_io import create_topics, read_topic
from .service import eventually, running_service, service_settings

pytestmark = pytest.mark.integration

TOPIC = TOPICS[0]
PARTITIONS = 3


async def alter_topic_config(bootstrap: str, topic: str, config: dict[str, str]) -> None:
    """Change `topic`'s `config`, as an operator would."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, config)])
    finally:
        await admin.close()


async def own_audit(
    bootstrap: str, unique: str, monkeypatch: pytest.MonkeyPatch, audit_config: dict[str, str] | None = None
) -> str:
    """Point the audit at an intake, dead-letter topic and group of the test's own, and at an audit log created
    only when `audit_config` is given."""
    audit, intake = f"test.audit.{unique}", f"test.audit.{unique}.intake"
    await create_topics(bootstrap, NewTopic(intake, PARTITIONS, 1), NewTopic(f"{intake}.dlq", PARTITIONS, 1))
    if audit_config is not None:
        await create_topics(bootstrap, NewTopic(audit, PARTITIONS, 1, topic_configs=audit_config))
    monkeypatch.setattr(names, "AUDIT_TOPIC", audit)
    monkeypatch.setattr(names, "INTAKE_TOPIC", intake)
    monkeypatch.setattr(names, "DEAD_LETTER_TOPIC", f"{intake}.dlq")
    monkeypatch.setattr(names, "SEALER_GROUP", f"test-{unique}-sealer")
    return audit


@pytest.fixture
async def audit_topics(kafka_bootstrap: str, unique: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """An audit log, intake and sealer group of this test's own: a forged record never reaches another test."""
    return await own_audit(kafka_bootstrap, unique, monkeypatch, {})


@pytest.fixture(autouse=True)
def audit_environment(unique: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The audit's settings of this test, as AUDIT_* variables: the sealer's transactional ids of its own."""
    monkeypatch.setenv("AUDIT_TRANSACTIONAL_ID_PREFIX", f"test-{unique}-sealer-")
    get_audit_settings.cache_clear()
    yield
    get_audit_settings.cache_clear()


def audit_settings(kafka_bootstrap: str, unique: str, **overrides: Any) -> Settings:
    return service_settings(kafka_bootstrap, unique, **overrides)


async def sealed(settings: Settings, key: str, count: int) -> list[dict[str, Any]]:
    """The entity's history once it holds `count` entries."""
    found: list[dict[str, Any]] = []

    async def complete() -> bool:
        found[:] = await cli.history(settings, key)
        return len(found) >= count

    await eventually(complete, within=90, interval=0.5)
    return found


async def test_every_event_is_sealed_with_actor_correlation_causation_outcome_and_time(
    kafka_bootstrap: str, unique: str, audit_topics: str
) -> None:
    settings = audit_settings(kafka_bootstrap, unique)
    key = unique_key(TOPIC)
    event = sample_event(TOPIC, key=key)
    async with running_service(settings) as client:
        response = await client.post(
            ROUTES[TOPIC.name], json=event.model_dump(mode="json"), headers={HTTP_HEADER: f"req-{unique}"}
        )
        assert response.status_code == 202, response.text
        history = await sealed(settings, key, 2)
    published = history[0]
    assert published["action"] == "published"
    assert published["outcome"] == "sent"
    assert published["event_id"] == str(event.event_id)
    assert published["topic"] == TOPIC.name
    assert published["actor"] == "agent-ops"
    assert published["correlation_id"] == f"req-{unique}"
    assert published["causation_id"] == f"req-{unique}"
    assert published["at"]
    processed = next(entry for entry in history if entry["action"] == "processed")
    assert processed["outcome"] == "handled"
    assert processed["event_id"] == str(event.event_id)
    assert processed["correlation_id"] == f"req-{unique}"
    assert await cli.verify(settings) == {}


async def test_verify_names_the_offset_of_a_record_forged_by_another_client(
    kafka_bootstrap: str, unique: str, audit_topics: str, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = audit_settings(kafka_bootstrap, unique)
    keys = [unique_key(TOPIC) for _ in range(12)]
    async with running_service(settings) as client:
        for key in keys:
            response = await client.post(ROUTES[TOPIC.name], json=sample_event(TOPIC, key=key).model_dump(mode="json"))
            assert response.status_code == 202, response.text

        async def all_sealed() -> bool:
            records = await read_topic(kafka_bootstrap, audit_topics, PARTITIONS, "read_committed")
            return {record.key for record in records} >= {key.encode() for key in keys}

        await eventually(all_sealed, within=90, interval=0.5)
    assert await cli.verify(settings) == {}, "the chain of a log only the sealer wrote holds"

    # Another client appends a record that copies the look of a sealed one and links to the last hash.
    records = await read_topic(kafka_bootstrap, audit_topics, PARTITIONS, "read_committed")
    last = [record for record in records if record.partition == 1][-1]
    forged = {
        "entry": json.loads(last.value)["entry"] | {"outcome": "forged"},
        "prev": json.loads(last.value)["hash"],
        "hash": "f" * 64,
    }
    delivered: list[int | None] = []
    producer = Producer(librdkafka(kafka_bootstrap))
    producer.produce(
        audit_topics,
        json.dumps(forged).encode(),
        key=last.key,
        partition=1,
        on_delivery=lambda error, message: delivered.append(None if error else message.offset()),
    )
    assert producer.flush(30) == 0
    (forged_offset,) = delivered
    assert forged_offset is not None

    breaks = await cli.verify(settings)
    assert set(breaks) == {1}
    assert breaks[1].offset == forged_offset
    assert "does not match its content" in breaks[1].reason
    # The command line says the same, and fails.
    get_settings.cache_clear()
    assert await asyncio.to_thread(cli.main, ["verify"], "audit") == 1
    assert f"{audit_topics}[1]@{forged_offset}: chain broken" in capsys.readouterr().err


async def test_under_exactly_once_an_aborted_transaction_leaves_no_audit_entry(
    kafka_bootstrap: str, unique: str, audit_topics: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = unique_key(TOPIC)
    aborted: list[int] = []

    async def noted_then_aborted_once(producer: Any, record: Any, outcome: str, by: str | None = None) -> Any:
        delivery = await record_processed(producer, record, outcome, by)
        if record.key == key.encode() and not aborted:
            aborted.append(record.offset)
            await delivery  # the entry is in the intake log, inside the open transaction, when it aborts
            raise KafkaError("simulated failure before commit")
        return delivery

    # Every runner writes a record's audit entry in the step that writes its outcome: here, inside the transaction.
    monkeypatch.setattr(audit_plugin, "record_processed", noted_then_aborted_once)
    settings = audit_settings(kafka_bootstrap, unique)
    async with running_service(settings) as client:
        event = sample_event(TOPIC, key=key)
        assert (await client.post(ROUTES[TOPIC.name], json=event.model_dump(mode="json"))).status_code == 202
        # Published, processed, and the event its handler emitted: each once.
        history = await sealed(settings, key, 3)
    assert aborted, "the first transaction was not made to fail"

    def processed(records: list[Any]) -> list[Any]:
        return [r for r in records if r.key == key.encode() and json.loads(r.value)["action"] == "processed"]

    everything = processed(await read_topic(kafka_bootstrap, names.INTAKE_TOPIC, PARTITIONS))
    committed = processed(await read_topic(kafka_bootstrap, names.INTAKE_TOPIC, PARTITIONS, "read_committed"))
    assert len(everything) == 2, "the aborted entry and the committed retry are both in the intake log"
    assert len(committed) == 1, "only the committed one counts"
    seen = [(entry["action"], entry["event_type"]) for entry in history]
    assert len(seen) == len(set(seen)), "the sealer never saw what the aborted transaction wrote"
    assert ("processed", type(event).__name__) in seen


def write_entries(bootstrap: str, entries: list[tuple[str, int, bytes]], transactional_id: str | None = None) -> None:
    """Write (key, partition, value) records to the intake with librdkafka, in one transaction when given an id."""
    config = librdkafka(bootstrap) | {"enable.idempotence": True}
    writer = Producer(config | ({"transactional.id": transactional_id} if transactional_id else {}))
    if transactional_id:
        writer.init_transactions(30)
        writer.begin_transaction()
    for key, partition, value in entries:
        writer.produce(names.INTAKE_TOPIC, value, key=key.encode(), partition=partition)
    if transactional_id:
        writer.commit_transaction(30)
    assert writer.flush(30) == 0


def an_entry(key: str, size: int = 0) -> bytes:
    return json.dumps({"action": "published", "key": key, "padding": "x" * size}).encode()


async def sealed_keys(bootstrap: str) -> set[bytes]:
    records = await read_topic(bootstrap, names.AUDIT_TOPIC, PARTITIONS, "read_committed")
    return {record.key for record in records if record.key is not None}


async def test_intake_records_that_are_not_entries_are_dead_lettered_and_the_sealer_goes_on(
    kafka_bootstrap: str, unique: str, audit_topics: str
) -> None:
    settings = audit_settings(kafka_bootstrap, unique)
    sealer = AuditSealer(settings)
    await sealer.start()
    try:
        written: list[str] = []
        for partition in range(PARTITIONS):
            written += await asyncio.to_thread(write_hostile, kafka_bootstrap, names.INTAKE_TOPIC, partition)
        keys = [f"after-{partition}-{unique}" for partition in range(PARTITIONS)]
        await asyncio.to_thread(write_entries, kafka_bootstrap, [(key, p, an_entry(key)) for p, key in enumerate(keys)])

        async def all_sealed() -> bool:
            return await sealed_keys(kafka_bootstrap) >= {key.encode() for key in keys}

        await eventually(all_sealed, within=90, interval=0.5)
        assert sealer.running, "no record stops the sealer"
        assert sealer.restarts == 0
    finally:
        await sealer.stop()
    dead = await asyncio.to_thread(dead_letters, kafka_bootstrap, names.DEAD_LETTER_TOPIC, PARTITIONS)
    kinds = sorted(key.decode() if key else "null key and value" for key, _ in dead)
    assert kinds == sorted(written), "each hostile record dead-lettered once"
    for _, headers in dead:
        assert headers["dlq.original.topic"] == names.INTAKE_TOPIC.encode()
        assert headers["dlq.error.type"] == b"NotAnEntryError"
    assert await cli.verify(settings) == {}, "only entries were chained"


async def test_the_sealer_group_has_no_lag_once_a_transactional_intake_is_sealed(
    kafka_bootstrap: str, unique: str, audit_topics: str
) -> None:
    """Under exactly-once the service writes the intake in transactions: the sealer commits past their markers."""
    settings = audit_settings(kafka_bootstrap, unique)
    keys = [f"tx-{partition}-{unique}" for partition in range(PARTITIONS)]
    entries = [(key, partition, an_entry(key)) for partition, key in enumerate(keys)]
    await asyncio.to_thread(write_entries, kafka_bootstrap, entries, f"test-{unique}-intake")
    sealer = AuditSealer(settings)
    await sealer.start()
    try:

        async def no_lag() -> bool:
            behind = await asyncio.to_thread(lag, kafka_bootstrap, names.SEALER_GROUP, names.INTAKE_TOPIC, PARTITIONS)
            return set(behind.values()) == {0}

        await eventually(no_lag, within=90, interval=0.5)
    finally:
        await sealer.stop()
    assert await sealed_keys(kafka_bootstrap) == {key.encode() for key in keys}


def sample(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


async def test_a_sealer_that_fails_starts_over_and_seals_once_it_can(
    kafka_bootstrap: str, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The audit log does not exist yet when the sealer starts (its KafkaTopic not reconciled yet): reading its
    last hash fails. The sealer is not silently gone: it counts a restart, reads unready, and seals once the topic
    is there."""
    monkeypatch.setattr("agent_ops.patterns.audit.sealer.AUDIT_LOG_WAIT_SECONDS", 2.0)
    audit = await own_audit(kafka_bootstrap, unique, monkeypatch)
    settings = audit_settings(kafka_bootstrap, unique)
    key = f"early-{unique}"
    await asyncio.to_thread(write_entries, kafka_bootstrap, [(key, 0, an_entry(key))])
    restarts = sample("audit_sealer_restarts_total")
    sealer = AuditSealer(settings, restart_backoff_seconds=0.5)
    await sealer.start()
    try:

        async def restarted() -> bool:
            return sample("audit_sealer_restarts_total") > restarts

        await eventually(restarted, within=180, interval=0.5)
        await create_topics(kafka_bootstrap, NewTopic(audit, PARTITIONS, 1))

        async def sealed() -> bool:
            return key.encode() in await sealed_keys(kafka_bootstrap)

        await eventually(sealed, within=180, interval=0.5)
        assert sealer.running
        assert sealer.up
        assert sample("audit_sealer_up") == 1
    finally:
        await sealer.stop()
    assert await cli.verify(settings) == {}


async def test_verify_fails_while_the_intake_holds_entries_left_unsealed(
    kafka_bootstrap: str, unique: str, audit_topics: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """No sealer ran: the log's chain holds (it is empty), but an entry two hours old waits in the intake."""
    key = f"waiting-{unique}"
    writer = Producer(librdkafka(kafka_bootstrap))
    two_hours_ago = int((time.time() - 7200) * 1000)
    writer.produce(names.INTAKE_TOPIC, an_entry(key), key=key.encode(), partition=2, timestamp=two_hours_ago)
    assert writer.flush(30) == 0
    settings = audit_settings(kafka_bootstrap, unique)
    assert await cli.verify(settings) == {}
    get_settings.cache_clear()
    assert await asyncio.to_thread(cli.main, ["verify"], "audit") == 1
    assert f"{names.INTAKE_TOPIC}[2]@0: 1 entries unsealed" in capsys.readouterr().err
    get_settings.cache_clear()
    assert await asyncio.to_thread(cli.main, ["verify", "--unsealed-after", "86400"], "audit") == 0


async def test_a_record_the_broker_refuses_aborts_the_seal_and_the_chain_never_links_past_it(
    kafka_bootstrap: str, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """aiokafka commits a transaction even when one of its sends failed: the sealer must not, or the next record
    would link to one the log does not hold."""
    audit = await own_audit(kafka_bootstrap, unique, monkeypatch, {"max.message.bytes": "1024"})
    settings = audit_settings(kafka_bootstrap, unique)
    big, small = f"big-{unique}", f"small-{unique}"
    entries = [(big, 1, an_entry(big, 4096)), (small, 1, an_entry(small))]
    await asyncio.to_thread(write_entries, kafka_bootstrap, entries)
    aborts = sample("audit_sealer_aborted_transactions_total")
    sealer = AuditSealer(settings)
    await sealer.start()
    try:

        async def aborted() -> bool:
            return sample("audit_sealer_aborted_transactions_total") > aborts

        await eventually(aborted, within=90, interval=0.5)
        # The operator raises the limit: the entry goes through on the next try.
        await alter_topic_config(kafka_bootstrap, audit, {"max.message.bytes": "1048588"})

        async def both_sealed() -> bool:
            return await sealed_keys(kafka_bootstrap) >= {big.encode(), small.encode()}

        await eventually(both_sealed, within=90, interval=0.5)
    finally:
        await sealer.stop()
    assert await cli.verify(settings) == {}, "the chain holds: no record links to one that is not there"
    records = await read_topic(kafka_bootstrap, audit, PARTITIONS, "read_committed")
    assert [record.key for record in records] == [big.encode(), small.encode()], "each sealed once, in order"
