"""Exactly-once: what a batch writes (emitted events, dead letters, offsets) commits or aborts as one, and
read_committed readers never see an aborted write."""

from typing import Any

import pytest
from aiokafka.errors import KafkaError

from task_ledger.events.catalog import AGENT_TASK_HISTORY, CONSUMED_TOPICS
from task_ledger.kafka import transactions
from task_ledger.kafka.dead_letters import send_dead_letter
from tests.samples import ROUTES, sample_event, unique_key

from .kafka_io import produce_raw, read_topic
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

    monkeypatch.setattr(transactions, "send_dead_letter", written_then_aborted_once)
    async with running_service(service_settings(kafka_bootstrap, unique)) as client:
        await produce_raw(kafka_bootstrap, TOPIC.name, b"\x00 not an event", key=poison_key)
        marker = sample_event(TOPIC, key=poison_key.decode())
        assert (await client.post(ROUTE, json=marker.model_dump(mode="json"))).status_code == 202

        async def marker_consumed() -> bool:
            seen = await client.get(f"{ROUTE}/{poison_key.decode()}")
            return seen.status_code == 200 and seen.json()["event_id"] == str(marker.event_id)

        await eventually(marker_consumed)
    assert failures, "the first transaction was not made to fail"

    def dead(records: list[Any]) -> list[Any]:
        return [r for r in records if r.key == poison_key]

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
