"""Change data capture on the real stack: PostgreSQL, Kafka Connect and Debezium capture `customers`, and
the service's consumer runner hands each change to `on_customers_change`, typed, in commit order per
row: first the rows there before the connector started (snapshot reads), then each insert, update and delete. A
record on the change topic that is not a change goes to its dead-letter topic, as on every consumed topic."""

import uuid
from functools import partial
from typing import Any

import asyncpg
import pytest

from order_pipelines.events.catalog import CUSTOMERS_CHANGES
from order_pipelines.events.models import Event
from order_pipelines.handlers import EventHandlers
from order_pipelines.patterns.cdc.changes import CustomersChange
from tests.patterns.cdc import SNAPSHOT_ROWS

from .kafka_io import find_record, produce_raw
from .service import eventually, running_service, service_settings

pytestmark = pytest.mark.integration

KEY = "customer_id"


@pytest.fixture
def changes(monkeypatch: pytest.MonkeyPatch) -> list[CustomersChange]:
    """Every change the handler is given, in the order it is given them."""
    seen: list[CustomersChange] = []

    async def record(self: EventHandlers, event: CustomersChange) -> list[Event]:
        seen.append(event)
        return []

    monkeypatch.setattr(EventHandlers, "on_customers_change", record)
    return seen


def of_row(changes: list[CustomersChange], key: object) -> list[CustomersChange]:
    return [change for change in changes if change.key == str(key)]


async def arrived(changes: list[CustomersChange], key: object, count: int) -> bool:
    return len(of_row(changes, key)) >= count


async def test_the_handler_gets_the_snapshot_then_each_change_typed_and_in_commit_order(
    connectors: None,
    changes: list[CustomersChange],
    kafka_bootstrap: str,
    local_stack: dict[str, str],
    unique: str,
) -> None:
    row: dict[str, Any] = {**SNAPSHOT_ROWS[0], KEY: uuid.uuid4().int % 2**31}
    async with running_service(service_settings(kafka_bootstrap, unique)):
        # The rows there before the connector first started: read by its snapshot, before any change.
        for existing in SNAPSHOT_ROWS:
            await eventually(partial(arrived, changes, existing[KEY], 1), within=120)
            (read,) = of_row(changes, existing[KEY])
            assert (read.op, read.before, read.source.snapshot) == ("r", None, True)
            assert read.after is not None
            assert read.after.model_dump() == existing

        connection = await asyncpg.connect(local_stack["DATABASE_URL"])
        try:
            columns = ", ".join(row)
            values = ", ".join(f"${n}" for n in range(1, len(row) + 1))
            await connection.execute(f"INSERT INTO customers ({columns}) VALUES ({values})", *row.values())
            await connection.execute(
                "UPDATE customers SET name = $1 WHERE customer_id = $2",
                "updated",
                row[KEY],
            )
            await connection.execute("DELETE FROM customers WHERE customer_id = $1", row[KEY])
        finally:
            await connection.close()
        await eventually(lambda: arrived(changes, row[KEY], 3), within=120)

    created, updated, deleted = of_row(changes, row[KEY])
    assert [change.op for change in (created, updated, deleted)] == ["c", "u", "d"]
    assert created.before is None
    assert created.after is not None
    assert created.after.model_dump() == row
    # REPLICA IDENTITY FULL: an update and a delete carry the whole row as it was.
    assert updated.before == created.after
    assert updated.after is not None
    assert updated.after.name == "updated"
    assert deleted.before == updated.after
    assert deleted.after is None
    positions = [change.source.lsn or 0 for change in (created, updated, deleted)]
    assert 0 < positions[0] < positions[1] < positions[2], "in commit order"
    assert not any(change.source.snapshot for change in (created, updated, deleted)), "streamed, not snapshot"
    assert len({change.event_id for change in (created, updated, deleted)}) == 3


async def test_a_record_that_is_not_a_change_goes_to_the_dead_letter_topic(
    connectors: None, changes: list[CustomersChange], kafka_bootstrap: str, unique: str
) -> None:
    key = f"poison-{unique}".encode()
    async with running_service(service_settings(kafka_bootstrap, unique)):
        await produce_raw(kafka_bootstrap, CUSTOMERS_CHANGES.name, b"not a change", key=key)
        dead = await find_record(kafka_bootstrap, CUSTOMERS_CHANGES.dead_letter, key, within=90)
    assert dead.value == b"not a change"
