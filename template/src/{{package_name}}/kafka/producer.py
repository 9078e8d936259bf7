"""Publishing events: idempotent, acknowledged by all in-sync replicas, bounded in time."""

import asyncio
import logging
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from ..events.catalog import topic_for
from ..events.models import Event
from ..events.serde import EventSerde
from ..settings import Settings
from .connection import connection_options

log = logging.getLogger(__name__)


class PublishError(Exception):
    """The broker did not acknowledge in time. The event may still be stored: retry with the same event_id."""


@dataclass(frozen=True)
class Published:
    event_id: str
    topic: str
    partition: int
    offset: int


def create_producer(settings: Settings) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        **connection_options(settings),
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        request_timeout_ms=int(settings.publish_timeout_seconds * 1000),
    )


async def stop_producer(producer: AIOKafkaProducer, timeout_seconds: float) -> None:
    """Flush and close. Bounded: while no broker answers, aiokafka would retry unsent records forever; every
    one of those was answered 503 (or its message left uncommitted), so giving up on them loses nothing."""
    try:
        await asyncio.wait_for(producer.stop(), timeout_seconds)
    except TimeoutError:
        log.warning("producer did not flush within %g s; unsent records dropped", timeout_seconds)
    else:
        log.info("producer flushed and closed")


def event_headers(event: Event) -> list[tuple[str, bytes]]:
    """Headers that let consumers route and de-duplicate without decoding the value."""
    return [("event-type", type(event).__name__.encode()), ("event-id", str(event.event_id).encode())]


class EventPublisher:
    """Sends each event to its topic, keyed by the topic's key field so one entity's events stay ordered."""

    def __init__(self, producer: AIOKafkaProducer, serde: EventSerde, timeout_seconds: float) -> None:
        self._producer = producer
        self._serde = serde
        self._timeout = timeout_seconds

    async def publish(self, event: Event) -> Published:
        topic = topic_for(event)
        value = await self._serde.serialize(topic, event)
        try:
            async with asyncio.timeout(self._timeout):
                metadata = await self._producer.send_and_wait(
                    topic.name, value, key=topic.key_of(event), headers=event_headers(event)
                )
        except (TimeoutError, KafkaError) as error:
            raise PublishError(f"{topic.name}: no acknowledgement within {self._timeout:g} s ({error!r})") from error
        return Published(str(event.event_id), metadata.topic, metadata.partition, metadata.offset)
