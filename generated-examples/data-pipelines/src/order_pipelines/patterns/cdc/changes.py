"""The changes of the `customers` table as Debezium captures them, typed: each insert (`c`), update
(`u`), delete (`d`) and snapshot read (`r`) with the row before and after it and where it is in the database's
log. Generated from the spec (spec.yml); `copier update` regenerates it."""

import json
from datetime import UTC, datetime
from typing import Literal
from uuid import NAMESPACE_URL, uuid5

from pydantic import BaseModel, ConfigDict, Field

from ...events.models import Event

# Ids of change events: one per change of one row, the same however often Debezium delivers it.
CHANGE_IDS = uuid5(NAMESPACE_URL, "debezium:order-pipelines-cdc")


class CustomersRow(BaseModel):
    """A row of `customers` as it was before or is after the change. Columns added to the table later are
    ignored until the spec names them."""

    model_config = ConfigDict(frozen=True)

    customer_id: int
    name: str
    email: str | None = None
    vip: bool


class SourcePosition(BaseModel):
    """Where the change is in the database's log: the commit position (LSN) orders the changes."""

    model_config = ConfigDict(frozen=True)

    lsn: int | None = Field(description="The write-ahead log position of the change.")
    tx_id: int | None = Field(description="The database transaction that made it.")
    ts_ms: int = Field(description="When the database made it, in milliseconds since the epoch.")
    snapshot: bool = Field(description="Read by the snapshot of the rows there on the connector's first start.")


class CustomersChange(Event):
    """One change of a row of `customers`."""

    type: Literal["CustomersChange"] = "CustomersChange"
    op: Literal["r", "c", "u", "d"] = Field(description="Snapshot read, create, update or delete.")
    before: CustomersRow | None = Field(description="The row before the change; none for reads and creates.")
    after: CustomersRow | None = Field(description="The row after the change; none for deletes.")
    source: SourcePosition

    @property
    def key(self) -> str:
        """The row's customer_id: changes of one row share it, and arrive in their order."""
        row = self.after or self.before
        assert row is not None, "a change has a row before or after it"
        return str(row.customer_id)


def decode_change(data: bytes | None) -> CustomersChange:
    """A change event from Debezium's JSON; ValueError when `data` is not one."""
    if data is None:
        raise ValueError("a record without a value is not a change")
    try:
        raw = json.loads(data)
        source = raw["source"]
        position = SourcePosition(
            lsn=source.get("lsn"),
            tx_id=source.get("txId"),
            ts_ms=source["ts_ms"],
            snapshot=str(source.get("snapshot", "false")).lower() not in ("false", "none"),
        )
        row = raw.get("after") or raw.get("before") or {}
        return CustomersChange(
            event_id=uuid5(CHANGE_IDS, f"{position.lsn}/{position.tx_id}/{raw['op']}/{row.get('customer_id')}"),
            occurred_at=datetime.fromtimestamp(position.ts_ms / 1000, UTC),
            op=raw["op"],
            before=raw.get("before"),
            after=raw.get("after"),
            source=position,
        )
    except (KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"not a change of customers: {error!r}") from error
