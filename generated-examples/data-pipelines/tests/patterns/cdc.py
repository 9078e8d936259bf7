"""Change data capture's part of the shared tests: a valid change event of customers, and the rows there
before its connector first starts (they reach the service as snapshot reads)."""

import asyncpg

from order_pipelines.patterns.cdc.changes import CustomersChange, CustomersRow, SourcePosition
from tests.patterns.support import PatternSupport
from tests.samples import sample_value

# Rows of customers there before its connector first starts: they reach the service as snapshot reads.
SNAPSHOT_ROWS = (
    {
        "customer_id": 900000001,
        "name": "snapshot-1",
        "email": "snapshot-1",
        "vip": True,
    },
    {
        "customer_id": 900000002,
        "name": "snapshot-2",
        "email": "snapshot-2",
        "vip": True,
    },
)


async def insert_snapshot_rows(database_url: str) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        columns = ", ".join(SNAPSHOT_ROWS[0])
        values = ", ".join(f"${n}" for n in range(1, len(SNAPSHOT_ROWS[0]) + 1))
        for row in SNAPSHOT_ROWS:
            await connection.execute(
                f"INSERT INTO customers ({columns}) VALUES ({values}) ON CONFLICT DO NOTHING", *row.values()
            )
    finally:
        await connection.close()


def sample_change(key: str | None = None) -> CustomersChange:
    """An insert into customers, of the row whose customer_id is `key` if given."""
    values = {name: sample_value(name, info) for name, info in CustomersRow.model_fields.items()}
    if key is not None:
        values["customer_id"] = type(values["customer_id"])(key)
    position = SourcePosition(lsn=1, tx_id=1, ts_ms=1_767_225_600_000, snapshot=False)
    return CustomersChange(op="c", before=None, after=CustomersRow(**values), source=position)


SUPPORT = PatternSupport(seed_database=insert_snapshot_rows, samples={CustomersChange: sample_change})
