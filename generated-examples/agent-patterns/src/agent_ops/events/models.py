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


class TaskCreated(Event):
    """A task was submitted for an agent to work on."""

    type: Literal["TaskCreated"] = "TaskCreated"
    task_id: Key = Field(description="Identifier of the task; all events of one task share it.")
    agent: Text = Field(description="Name of the agent that should run the task.")
    prompt: Text = Field(description="What the agent is asked to do.")


class TaskCompleted(Event):
    """The agent finished the task."""

    type: Literal["TaskCompleted"] = "TaskCompleted"
    task_id: Key
    result: Text = Field(description="The agent\u0027s answer.")


AgentTasksEvent = Annotated[
    TaskCreated | TaskCompleted,
    Field(discriminator="type"),
]
"""Any event on `agent.tasks`."""


class TaskRecorded(Event):
    """The workers processed an event of the task."""

    type: Literal["TaskRecorded"] = "TaskRecorded"
    task_id: Key
    agent: Text | None = Field(default=None, description="The agent named by the event, when it names one.")


AgentTaskHistoryEvent = Annotated[
    TaskRecorded,
    Field(discriminator="type"),
]
"""Any event on `agent.task.history`."""
