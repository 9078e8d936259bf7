"""What the service does with each event it consumes: your business logic, yours to edit.

`copier update` never overwrites this file. When the spec gains a consumed event, dispatch.py (regenerated) asks
for a new `on_<event>` method here: mypy and tests/unit/test_handlers.py name it until you write it.

Delivery is at-least-once: an event can arrive twice (after a crash or a rebalance); the runner passes it to its
handler only the first time its event_id is seen, and commits it only after the events it returned are stored.
"""

import logging

from .events.models import (
    Event,
    ShipmentDispatched,
)
from .patterns.cdc.changes import CustomersChange

log = logging.getLogger(__name__)


class EventHandlers:
    """Satisfies `dispatch.Handlers`: one method per consumed event type, returning the events it causes."""

    async def on_shipment_dispatched(self, event: ShipmentDispatched) -> list[Event]:
        log.info("ShipmentDispatched %s shipment_id=%s", event.event_id, event.shipment_id)
        return []

    async def on_customers_change(self, event: CustomersChange) -> list[Event]:
        # A row of customers was read by the snapshot (op "r"), created, updated or deleted; before and
        # after are the row on either side. Repeats (after a crash) carry the same event_id.
        log.info("customers %s customer_id=%s at %s", event.op, event.key, event.source.lsn)
        return []
