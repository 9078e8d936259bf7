"""The one seam between events and record bytes: every producer and consumer encodes through an `EventSerde`
(the service's is `AvroSerde` in avro.py)."""

from typing import Protocol

from .catalog import Topic
from .models import Event


class DeserializationError(Exception):
    """Bytes that cannot become an event of the topic: a poison message, never worth retrying."""


class SchemaRefusedError(Exception):
    """The schema registry refuses the event's schema under `subject` (unknown while auto-registration is off, or
    incompatible with the registered versions): a deployment problem, never worth retrying."""

    def __init__(self, subject: str, reason: str) -> None:
        super().__init__(f"subject {subject}: {reason}")
        self.subject = subject


class RegistryUnavailableError(Exception):
    """The schema registry did not answer: worth retrying later."""


class EventSerde(Protocol):
    async def serialize(self, topic: Topic, event: Event) -> bytes: ...

    async def deserialize(self, topic: Topic, data: bytes) -> Event: ...
