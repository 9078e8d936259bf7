"""The audit log against the real broker: every event published and processed is sealed with its correlation,
`audit verify` holds on a real log and names the offset of a record forged by another client."""

import asyncio
import json
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from confluent_kafka import Producer

from task_audit.correlation import HTTP_HEADER
from task_audit.events.catalog import TOPICS
from task_audit.patterns.audit import cli, names
from task_audit.settings import Settings, get_settings
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
    assert published["actor"] == "task-audit"
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
