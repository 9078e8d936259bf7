"""The topics this service owns, as declared in the spec: the one place code learns topic names.

Generated from the spec (spec.yml); `copier update` regenerates it."""

from dataclasses import dataclass

from pydantic import TypeAdapter

from ..patterns.cdc.changes import CustomersChange
from .models import (
    Event,
    OrderCancelled,
    OrderPlaced,
    OrdersEvent,
    ShipmentDispatched,
    ShipmentsEvent,
)


@dataclass(frozen=True)
class Topic:
    name: str
    partitions: int
    key_field: str
    consumed: bool
    event_types: tuple[type[Event], ...]
    adapter: TypeAdapter[Event]

    @property
    def dead_letter(self) -> str:
        return f"{self.name}.dlq"

    def key_of(self, event: Event) -> bytes:
        return str(getattr(event, self.key_field)).encode()


SHIPMENTS = Topic(
    name="shipments",
    partitions=3,
    key_field="shipment_id",
    consumed=True,
    event_types=(ShipmentDispatched,),
    adapter=TypeAdapter(ShipmentsEvent),
)

ORDERS = Topic(
    name="orders",
    partitions=3,
    key_field="order_id",
    consumed=False,
    event_types=(
        OrderPlaced,
        OrderCancelled,
    ),
    adapter=TypeAdapter(OrdersEvent),
)

TOPICS: tuple[Topic, ...] = (SHIPMENTS, ORDERS)
# The changes of the customers table, written by Debezium as JSON: consumed like a topic of the spec, never published
# by the service.
CUSTOMERS_CHANGES = Topic(
    name="customers.changes",
    partitions=3,
    key_field="key",
    consumed=True,
    event_types=(CustomersChange,),
    adapter=TypeAdapter(CustomersChange),
)
CONSUMED_TOPICS: tuple[Topic, ...] = (*(topic for topic in TOPICS if topic.consumed), CUSTOMERS_CHANGES)
_BY_NAME = {topic.name: topic for topic in (*TOPICS, CUSTOMERS_CHANGES)}
_BY_EVENT = {event_type: topic for topic in TOPICS for event_type in topic.event_types}


def topic_named(name: str) -> Topic:
    return _BY_NAME[name]


def topic_for(event: Event) -> Topic:
    """The topic an event is published on."""
    return _BY_EVENT[type(event)]
