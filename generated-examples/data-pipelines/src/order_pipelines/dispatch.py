"""Generated from the spec (spec.yml); `copier update` regenerates it. Write handlers in handlers.py, not here."""

from collections.abc import Sequence
from typing import Protocol

from .events.catalog import Topic
from .events.models import (
    Event,
    ShipmentDispatched,
)
from .patterns.cdc.changes import CustomersChange
from .read_model import LatestEventByKey


class Handlers(Protocol):
    """One method per consumed event type. Each returns the events it causes, which the runner publishes."""

    async def on_shipment_dispatched(self, event: ShipmentDispatched) -> Sequence[Event]: ...

    async def on_customers_change(self, event: CustomersChange) -> Sequence[Event]: ...


HANDLER_METHODS: dict[type[Event], str] = {
    ShipmentDispatched: "on_shipment_dispatched",
    CustomersChange: "on_customers_change",
}
"""The method of `Handlers` each consumed event type goes to."""


class Dispatcher:
    """Passes each consumed event to its handler method, then records it in the view the GET routes read."""

    def __init__(self, handlers: Handlers, view: LatestEventByKey) -> None:
        self._handlers = handlers
        self._view = view

    async def __call__(self, topic: Topic, event: Event) -> Sequence[Event]:
        match event:
            case ShipmentDispatched():
                emitted = await self._handlers.on_shipment_dispatched(event)
            case CustomersChange():
                emitted = await self._handlers.on_customers_change(event)
            case _:
                raise TypeError(f"no handler for {type(event).__name__}")
        self._view.record(topic, event)
        return emitted
