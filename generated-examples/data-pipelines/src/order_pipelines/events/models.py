"""Typed events, one class per event in the spec. Clients may send their own `event_id` to make retries idempotent.

Generated from the spec (spec.yml); `copier update` regenerates it. Each class mirrors its Avro schema in schemas/
(both rendered from the spec; tests/unit/test_avro.py checks they agree). The `type` discriminator is not an Avro
field: the record's name carries it."""

import re
from datetime import UTC, datetime
from typing import Annotated, Literal
from uuid import UUID, uuid4

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints
from pydantic.config import JsonDict

from ..settings import get_settings


def _to_millis(value: datetime) -> datetime:
    """Avro's timestamp-millis keeps milliseconds: trimming here makes every event survive its schema unchanged.
    A time without a zone is taken as UTC."""
    value = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


# RFC 3339's date-time, zone included: what the OpenAPI document promises (`format: date-time`).
_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


def _a_date_time(value: object) -> object:
    """Pydantic would read a number, or a string of digits, as seconds since the epoch, a date alone as its midnight
    and a time without a zone as local: a timestamp is a datetime, or an RFC 3339 date-time string."""
    if isinstance(value, datetime) or (isinstance(value, str) and _DATE_TIME.fullmatch(value)):
        return value
    raise ValueError("a timestamp is a date-time string with its zone, such as 2026-01-31T09:30:00Z")


Timestamp = Annotated[datetime, BeforeValidator(_a_date_time), AfterValidator(_to_millis)]

# Read once at import, so that validation and the OpenAPI document state the same limits.
_limits = get_settings()
Key = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=_limits.event_key_max_length)]
"""A partition key: never empty, or every event of every key would share one partition."""
Text = Annotated[str, StringConstraints(strict=True, max_length=_limits.event_text_max_length)]

# PostgreSQL's text and jsonb cannot hold a NUL character: the events the outbox stores refuse one, and say so.
_NO_NUL = StringConstraints(pattern=r"^[^\x00]*$")
StoredKey = Annotated[Key, _NO_NUL]
StoredText = Annotated[Text, _NO_NUL]


def _integral(value: object) -> object:
    """An integer as JSON Schema has it: 7 or 7.0, never "7" or true."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("an integer is a JSON number without a fraction")
    return value


# Avro's long has 64 bits, JSON parsers often 53 (I-JSON, RFC 7493): an API number must survive every client.
Long = Annotated[int, Field(ge=-(2**53 - 1), le=2**53 - 1), BeforeValidator(_integral)]


def _type_required(schema: JsonDict) -> None:
    """The discriminator picks the event's class, so a body must name it; only Python code may leave `type` out."""
    properties = schema.get("properties")
    required = schema.get("required", [])
    if isinstance(properties, dict) and "type" in properties and isinstance(required, list):
        schema["required"] = ["type", *required]


def _now() -> datetime:
    return _to_millis(datetime.now(UTC))


class Event(BaseModel):
    """Fields every event carries. Subclasses add their payload."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_type_required)

    event_id: UUID = Field(default_factory=uuid4, description="Unique per event; consumers de-duplicate on it.")
    occurred_at: Timestamp = Field(default_factory=_now, description="When the event happened (UTC).")


class ShipmentDispatched(Event):
    """A parcel left the warehouse."""

    type: Literal["ShipmentDispatched"] = "ShipmentDispatched"
    shipment_id: Key = Field(description="Identifier of the parcel.")
    order_id: Text = Field(description="The order it carries.")
    carrier: Text = Field(description="Who delivers it.")


ShipmentsEvent = Annotated[
    ShipmentDispatched,
    Field(discriminator="type"),
]
"""Any event on `shipments`."""


class OrderPlaced(Event):
    """A customer placed an order."""

    type: Literal["OrderPlaced"] = "OrderPlaced"
    order_id: StoredKey = Field(description="Identifier of the order; all events of one order share it.")
    customer_id: Long = Field(description="The customer who placed it.")
    item: StoredText = Field(description="What was ordered.")
    amount_cents: Long = Field(description="What the order costs in cents.")


class OrderCancelled(Event):
    """The order was cancelled before it shipped."""

    type: Literal["OrderCancelled"] = "OrderCancelled"
    order_id: StoredKey
    reason: StoredText | None = Field(default=None, description="Why the customer cancelled it.")


OrdersEvent = Annotated[
    OrderPlaced | OrderCancelled,
    Field(discriminator="type"),
]
"""Any event on `orders`."""
