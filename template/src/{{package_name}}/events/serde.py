"""The one seam between events and record bytes: every producer and consumer encodes through an `EventSerde`."""

from typing import Protocol

from pydantic import ValidationError

from .catalog import Topic
from .models import Event


class DeserializationError(Exception):
    """Bytes that cannot become an event of the topic: a poison message, never worth retrying."""


class EventSerde(Protocol):
    async def serialize(self, topic: Topic, event: Event) -> bytes: ...

    async def deserialize(self, topic: Topic, data: bytes) -> Event: ...


class JsonSerde:
    """Events as their pydantic JSON form, discriminated by the `type` field."""

    async def serialize(self, topic: Topic, event: Event) -> bytes:
        return event.model_dump_json().encode()

    async def deserialize(self, topic: Topic, data: bytes) -> Event:
        try:
            return topic.adapter.validate_json(data)
        except ValidationError as error:
            raise DeserializationError(f"not a {topic.name} event: {error}") from error
