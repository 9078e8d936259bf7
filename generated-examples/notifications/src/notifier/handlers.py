"""What the service does with each event it consumes. Put your business logic here.

Delivery is at-least-once: an event can arrive twice (after a crash or a rebalance); the runner passes it to its
handler only the first time its event_id is seen, and commits it only after the events it returned are stored.
"""

import logging

from .events.catalog import Topic
from .events.models import (
    Event,
    NotificationRequested,
)
from .views import LatestEventByKey

log = logging.getLogger(__name__)


class EventHandlers:
    def __init__(self, view: LatestEventByKey) -> None:
        self._view = view

    async def __call__(self, topic: Topic, event: Event) -> list[Event]:
        """Handle one event; return the events it causes."""
        match event:
            case NotificationRequested():
                emitted = await self.on_notification_requested(event)
            case _:
                raise TypeError(f"no handler for {type(event).__name__}")
        self._view.record(topic, event)
        return emitted

    async def on_notification_requested(self, event: NotificationRequested) -> list[Event]:
        log.info("NotificationRequested %s user_id=%s", event.event_id, event.user_id)
        return []
