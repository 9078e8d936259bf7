"""Valid events of every type, built from the models themselves so they follow the spec."""

import types
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic.fields import FieldInfo

from agent_ops.events.catalog import Topic
from agent_ops.events.models import Event
from tests.patterns import event_samples

_ENVELOPE = {"event_id", "occurred_at", "type"}
"""Set by the service on every event; the spec reserves these names."""

ROUTES = {
    "agent.tasks": "/tasks",
    "agent.task.history": "/task-history",
}
"""The HTTP path that publishes on each topic."""


def sample_value(name: str, info: FieldInfo) -> Any:
    annotation = info.annotation
    if get_origin(annotation) in (Union, types.UnionType):
        annotation = next(arg for arg in get_args(annotation) if arg is not type(None))
    if get_origin(annotation) is Annotated:  # e.g. Timestamp inside an optional field
        annotation = get_args(annotation)[0]
    if get_origin(annotation) is Literal:
        return get_args(annotation)[0]
    samples: dict[Any, Any] = {
        str: f"{name}-{uuid.uuid4().hex[:8]}",
        int: 7,
        float: 1.5,
        bool: True,
        datetime: datetime(2026, 1, 1, tzinfo=UTC),
    }
    return samples[annotation]


def sample_event(topic: Topic, event_type: type[Event] | None = None, key: str | None = None) -> Event:
    """An event of `event_type` (default: the topic's first) with its key field set to `key` if given."""
    event_type = event_type or topic.event_types[0]
    if (sample_of_pattern := event_samples().get(event_type)) is not None:  # a type of a pattern's own
        return sample_of_pattern(key)
    values = {name: sample_value(name, info) for name, info in event_type.model_fields.items() if name not in _ENVELOPE}
    if key is not None:
        values[topic.key_field] = type(values[topic.key_field])(key)
    return event_type(**values)


def unique_key(topic: Topic) -> str:
    """A key value no other test uses, of the key field's type."""
    annotation = topic.event_types[0].model_fields[topic.key_field].annotation
    return str(uuid.uuid4().int % 2**31) if annotation is int else f"key-{uuid.uuid4().hex}"
