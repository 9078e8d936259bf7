"""Generated from the spec (spec.yml); `copier update` regenerates it. Write handlers in handlers.py, not here."""

from collections.abc import Sequence
from typing import Protocol

from .events.catalog import Topic
from .events.models import (
    Event,
    TaskCompleted,
    TaskCreated,
    TaskFailed,
    TaskStarted,
)
from .read_model import LatestEventByKey


class Handlers(Protocol):
    """One method per consumed event type. Each returns the events it causes, which the runner publishes."""

    async def on_task_created(self, event: TaskCreated) -> Sequence[Event]: ...

    async def on_task_started(self, event: TaskStarted) -> Sequence[Event]: ...

    async def on_task_completed(self, event: TaskCompleted) -> Sequence[Event]: ...

    async def on_task_failed(self, event: TaskFailed) -> Sequence[Event]: ...


HANDLER_METHODS: dict[type[Event], str] = {
    TaskCreated: "on_task_created",
    TaskStarted: "on_task_started",
    TaskCompleted: "on_task_completed",
    TaskFailed: "on_task_failed",
}
"""The method of `Handlers` each consumed event type goes to."""


class Dispatcher:
    """Passes each consumed event to its handler method, then records it in the view the GET routes read."""

    def __init__(self, handlers: Handlers, view: LatestEventByKey) -> None:
        self._handlers = handlers
        self._view = view

    async def __call__(self, topic: Topic, event: Event) -> Sequence[Event]:
        match event:
            case TaskCreated():
                emitted = await self._handlers.on_task_created(event)
            case TaskStarted():
                emitted = await self._handlers.on_task_started(event)
            case TaskCompleted():
                emitted = await self._handlers.on_task_completed(event)
            case TaskFailed():
                emitted = await self._handlers.on_task_failed(event)
            case _:
                raise TypeError(f"no handler for {type(event).__name__}")
        self._view.record(topic, event)
        return emitted
