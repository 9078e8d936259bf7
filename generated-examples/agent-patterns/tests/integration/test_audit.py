"""The audit log against the real broker: every event published and processed is sealed with its correlation,
`audit verify` holds on a real log and names the offset of a record forged by another client."""

import asyncio
import json
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError
from confluent_kafka import Producer

from agent_ops.correlation import HTTP_HEADER
from agent_ops.events.catalog import TOPICS
from agent_ops.kafka import outcomes
from agent_ops.patterns.audit import cli, names
from agent_ops.patterns.audit.intake import record_processed
from agent_ops.settings import Settings, get_settings
from tests.samples import ROUTES, sample_event, unique_key

from .kafka_io import read_topic
from .service import eventually, running_service, service_settings

pytestmark = pytest.mark.integration

TOPIC = TOPICS[0]
PARTITIONS = 3


@pytest.fixture
async def audit_topics(kafka_bootstrap: str, unique: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """An audit log, intake and sealer group of this test's own: a forged record never reaches another test."""
    audit, intake = f"test.audit.{unique}", f"test.audit.{unique}.intake"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(audit, PARTITIONS, 1), NewTopic(intake, PARTITIONS, 1)])
    finally:
        await admin.close()
    monkeypatch.setattr(names, "AUDIT_TOPIC", audit)
    monkeypatch.setattr(names, "INTAKE_TOPIC", intake)
    monkeypatch.setattr(names, "SEALER_GROUP", f"test-{unique}-sealer")
    return audit


def audit_settings(kafka_bootstrap: str, unique: str, **overrides: Any) -> Settings:
    return service_settings(
        kafka_bootstrap, unique, audit_transactional_id_prefix=f"test-{unique}-sealer-", **overrides
    )


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
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
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
    monkeypatch.setattr(outcomes, "record_processed", noted_then_aborted_once)
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
