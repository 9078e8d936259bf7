"""What the service does with each event it consumes: your business logic, yours to edit.

`copier update` never overwrites this file. When the spec gains a consumed event, dispatch.py (regenerated) asks
for a new `on_<event>` method here: mypy and tests/unit/test_handlers.py name it until you write it.

Delivery is exactly-once: the events a handler returns are published in the same Kafka transaction as the
consumed offset. A handler can run again after a crash (its transaction aborted, nothing of it visible), so
side effects outside Kafka must be idempotent by event id.
"""

import logging
from uuid import UUID, uuid5

from .events.models import (
    Event,
    TaskCompleted,
    TaskCreated,
    TaskRecorded,
)

log = logging.getLogger(__name__)


def effect_id(cause: Event, effect: type[Event]) -> UUID:
    """The same id every time `cause` is handled, so a repeated emission is recognisably the same event."""
    return uuid5(cause.event_id, effect.__name__)


class EventHandlers:
    """Satisfies `dispatch.Handlers`: one method per consumed event type, returning the events it causes."""

    async def on_task_created(self, event: TaskCreated) -> list[Event]:
        log.info("TaskCreated %s task_id=%s", event.event_id, event.task_id)
        return [
            TaskRecorded(
                event_id=effect_id(event, TaskRecorded),
                task_id=event.task_id,
                agent=event.agent,
            )
        ]

    async def on_task_completed(self, event: TaskCompleted) -> list[Event]:
        log.info("TaskCompleted %s task_id=%s", event.event_id, event.task_id)
        return [
            TaskRecorded(
                event_id=effect_id(event, TaskRecorded),
                task_id=event.task_id,
            )
        ]
