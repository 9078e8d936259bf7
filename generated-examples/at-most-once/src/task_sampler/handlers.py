"""What the service does with each event it consumes. Put your business logic here.

Delivery is at-most-once: offsets are committed before handling, so after a crash an event may never reach its
handler, but no event reaches it twice.
"""

import logging
from uuid import UUID, uuid5

from .events.catalog import Topic
from .events.models import (
    Event,
    TaskCompleted,
    TaskCreated,
    TaskFailed,
    TaskRecorded,
    TaskStarted,
)
from .views import LatestEventByKey

log = logging.getLogger(__name__)


def effect_id(cause: Event, effect: type[Event]) -> UUID:
    """The same id every time `cause` is handled, so a repeated emission is recognisably the same event."""
    return uuid5(cause.event_id, effect.__name__)


class EventHandlers:
    def __init__(self, view: LatestEventByKey) -> None:
        self._view = view

    async def __call__(self, topic: Topic, event: Event) -> list[Event]:
        """Handle one event; return the events it causes."""
        match event:
            case TaskCreated():
                emitted = await self.on_task_created(event)
            case TaskStarted():
                emitted = await self.on_task_started(event)
            case TaskCompleted():
                emitted = await self.on_task_completed(event)
            case TaskFailed():
                emitted = await self.on_task_failed(event)
            case _:
                raise TypeError(f"no handler for {type(event).__name__}")
        self._view.record(topic, event)
        return emitted

    async def on_task_created(self, event: TaskCreated) -> list[Event]:
        log.info("TaskCreated %s task_id=%s", event.event_id, event.task_id)
        return [
            TaskRecorded(
                event_id=effect_id(event, TaskRecorded),
                task_id=event.task_id,
                agent=event.agent,
            )
        ]

    async def on_task_started(self, event: TaskStarted) -> list[Event]:
        log.info("TaskStarted %s task_id=%s", event.event_id, event.task_id)
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

    async def on_task_failed(self, event: TaskFailed) -> list[Event]:
        log.info("TaskFailed %s task_id=%s", event.event_id, event.task_id)
        return [
            TaskRecorded(
                event_id=effect_id(event, TaskRecorded),
                task_id=event.task_id,
            )
        ]
