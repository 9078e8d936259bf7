"""The topics this service owns, as declared in the spec: the one place code learns topic names.

Generated from the spec (spec.yml); `copier update` regenerates it."""

from dataclasses import dataclass

from pydantic import TypeAdapter

from .models import (
    AgentTaskHistoryEvent,
    AgentTasksEvent,
    Event,
    TaskCompleted,
    TaskCreated,
    TaskRecorded,
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


AGENT_TASKS = Topic(
    name="agent.tasks",
    partitions=6,
    key_field="task_id",
    consumed=True,
    event_types=(
        TaskCreated,
        TaskCompleted,
    ),
    adapter=TypeAdapter(AgentTasksEvent),
)

AGENT_TASK_HISTORY = Topic(
    name="agent.task.history",
    partitions=3,
    key_field="task_id",
    consumed=False,
    event_types=(TaskRecorded,),
    adapter=TypeAdapter(AgentTaskHistoryEvent),
)

TOPICS: tuple[Topic, ...] = (AGENT_TASKS, AGENT_TASK_HISTORY)
CONSUMED_TOPICS: tuple[Topic, ...] = tuple(topic for topic in TOPICS if topic.consumed)
_BY_NAME = {topic.name: topic for topic in TOPICS}
_BY_EVENT = {event_type: topic for topic in TOPICS for event_type in topic.event_types}


def topic_named(name: str) -> Topic:
    return _BY_NAME[name]


def topic_for(event: Event) -> Topic:
    """The topic an event is published on."""
    return _BY_EVENT[type(event)]
