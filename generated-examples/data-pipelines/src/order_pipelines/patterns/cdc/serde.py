"""The service's serde with the change topic's JSON beside its Avro: the consumer runner reads
`customers`'s changes like any topic, a change it cannot read going to the dead-letter topic."""

from ...events.catalog import CUSTOMERS_CHANGES, Topic
from ...events.models import Event
from ...events.serde import DeserializationError, EventSerde
from .changes import decode_change


class WithChanges:
    def __init__(self, serde: EventSerde) -> None:
        self._serde = serde

    async def serialize(self, topic: Topic, event: Event) -> bytes:
        return await self._serde.serialize(topic, event)

    async def deserialize(self, topic: Topic, data: bytes) -> Event:
        if topic.name != CUSTOMERS_CHANGES.name:
            return await self._serde.deserialize(topic, data)
        try:
            return decode_change(data)
        except ValueError as error:
            raise DeserializationError(str(error)) from error
