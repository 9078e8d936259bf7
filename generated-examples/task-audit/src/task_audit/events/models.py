"""Typed events, one class per event in the spec. Clients may send their own `event_id` to make retries idempotent.

Generated from the spec (spec.yml); `copier update` regenerates it. Each class mirrors its Avro schema in schemas/
(both rendered from the spec; tests/unit/test_avro.py checks they agree). The `type` discriminator is not an Avro
field: the record's name carries it."""

from datetime import UTC, datetime
from typing import Annotated, Literal
from uuid import UUID, uuid4

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def _to_millis(value: datetime) -> datetime:
    """Avro's timestamp-millis keeps milliseconds: trimming here makes every event survive its schema unchanged.
    A time without a zone is taken as UTC."""
    value = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


Timestamp = Annotated[datetime, AfterValidator(_to_millis)]


def _now() -> datetime:
    return _to_millis(datetime.now(UTC))


class Event(BaseModel):
    """Fields every event carries. Subclasses add their payload."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: UUID = Field(default_factory=uuid4, description="Unique per event; consumers de-duplicate on it.")
    occurred_at: Timestamp = Field(default_factory=_now, description="When the event happened (UTC).")


class TaskCreated(Event):
    """A task was submitted for an agent to work on."""

    type: Literal["TaskCreated"] = "TaskCreated"
    task_id: str = Field(description="Identifier of the task; all events of one task share it.")
    agent: str = Field(description="Name of the agent that should run the task.")
    prompt: str = Field(description="What the agent is asked to do.")


class TaskFailed(Event):
    """The agent gave up on the task."""

    type: Literal["TaskFailed"] = "TaskFailed"
    task_id: str
    error: str = Field(description="Why the task failed.")
    retryable: bool = Field(description="Whether submitting it again may succeed.")


AgentTasksEvent = Annotated[
    TaskCreated | TaskFailed,
    Field(discriminator="type"),
]
"""Any event on `agent.tasks`."""
