"""Publishing events: idempotent, acknowledged by all in-sync replicas, bounded in time and memory."""

import asyncio
import functools
import logging
from dataclasses import dataclass
from typing import Any, Protocol

from .. import correlation
from ..events.catalog import Topic, topic_for
from ..events.models import Event
from ..events.serde import EventSerde
from ..observability import metrics
from ..settings import Settings
from .client import ERRORS, publish_producer
from .hooks import NO_HOOKS, Hooks
from .port import Delivery, Producer

log = logging.getLogger(__name__)


class PublishError(Exception):
    """The broker did not acknowledge in time. The event may still be stored: retry with the same event_id."""


class PublishBackpressure(PublishError):
    """Too many sends are waiting for the broker already: refused at once rather than queued without bound."""


class UnpublishableEvent(Exception):
    """The event cannot be encoded for its topic: retrying it as it is will never succeed."""


@dataclass(frozen=True)
class Published:
    event_id: str
    topic: str
    # None for an event a plug-in stored first (in a database), to be published after the commit.
    partition: int | None
    offset: int | None


class Publisher(Protocol):
    """What the HTTP routes publish with: an `EventPublisher`, or a pattern's publisher in its place."""

    async def publish(self, event: Event) -> Published: ...


def create_producer(settings: Settings) -> Producer:
    """The publish path's producer: idempotent, every in-sync replica acknowledging, batching
    for up to 5 ms, each request bounded by PUBLISH_TIMEOUT_SECONDS (the client's own tuning: `publish_producer`)."""
    return publish_producer(settings)


async def stop_producer(producer: Producer, timeout_seconds: float) -> None:
    """Flush and close. Bounded: while no broker answers, a client retries unsent records (aiokafka forever,
    librdkafka until its delivery timeout); every one of those was answered 503 (or its message left uncommitted),
    so giving up on them loses nothing."""
    try:
        await asyncio.wait_for(producer.stop(), timeout_seconds)
    except TimeoutError:
        log.warning("producer did not flush within %g s; unsent records dropped", timeout_seconds)
    else:
        log.info("producer flushed and closed")


def event_headers(event: Event, cause: Event | None = None) -> list[tuple[str, bytes]]:
    """Headers that let consumers route and de-duplicate without decoding the value, and trace an event to
    the work it belongs to (correlation-id) and to what caused it (causation-id: `cause`, else the request)."""
    return _headers(event, str(event.event_id), cause)


def _headers(event: Event, event_id: str, cause: Event | None) -> list[tuple[str, bytes]]:
    headers = [_type_header(type(event)), ("event-id", event_id.encode())]
    headers += correlation.outgoing(event_id, str(cause.event_id) if cause is not None else None)
    return headers


@functools.cache
def _type_header(event_type: type[Event]) -> tuple[str, bytes]:
    return "event-type", event_type.__name__.encode()


async def send_event(
    producer: Producer,
    serde: EventSerde,
    event: Event,
    cause: Event | None = None,
    *,
    counted: bool = True,
    hooks: Hooks = NO_HOOKS,
) -> "asyncio.Future[Any]":
    """Queue an event on its topic, keyed so one entity's events stay ordered; returns its delivery future,
    counted in the metrics when it resolves unless `counted` is False (the caller counts it: `metrics.sent`).
    With `hooks`, the future resolves once what they sent with the event is acknowledged too."""
    return await _send(producer, serde, topic_for(event), event, str(event.event_id), cause, counted, hooks)


async def _send(
    producer: Producer,
    serde: EventSerde,
    topic: Topic,
    event: Event,
    event_id: str,
    cause: Event | None,
    counted: bool,
    hooks: Hooks,
) -> "asyncio.Future[Any]":
    """`send_event` with the topic and the event id as text given, which `EventPublisher` needs again after."""
    value = await serde.serialize(topic, event)
    headers = _headers(event, event_id, cause)
    key = topic.key_of(event)
    delivery: Delivery = await producer.send(topic.name, value, key=key, headers=headers)
    if counted:
        metrics.sending(topic.name, delivery)
    if not hooks.published:  # the common case: no coroutine more per event
        return delivery
    return await hooks.on_published(producer, topic.name, key, headers, delivery)


class EventPublisher:
    """Sends each event to its topic and waits for the acknowledgement, with at most `max_in_flight` sends
    waiting at once: during an outage callers are refused quickly instead of piling up in memory."""

    def __init__(
        self,
        producer: Producer,
        serde: EventSerde,
        timeout_seconds: float,
        max_in_flight: int,
        hooks: Hooks = NO_HOOKS,
    ) -> None:
        self._producer = producer
        self._hooks = hooks
        self._serde = serde
        self._timeout = timeout_seconds
        self._max_in_flight = max_in_flight
        self._in_flight = 0
        self._deadlines = AckDeadlines(timeout_seconds)

    async def publish(self, event: Event) -> Published:
        # A count, not a semaphore: nobody ever waits for a slot, a caller past the bound is refused.
        if self._in_flight >= self._max_in_flight:
            raise PublishBackpressure("too many events are waiting for the broker; retry later")
        self._in_flight += 1
        try:
            topic = topic_for(event)
            event_id = str(event.event_id)
            try:
                delivery = await _send(self._producer, self._serde, topic, event, event_id, None, False, self._hooks)
            except (ValueError, TypeError) as error:
                raise UnpublishableEvent(f"{type(event).__name__} cannot be encoded: {error}") from error
            except ERRORS.any as error:
                raise PublishError(f"{topic.name}: not accepted by the producer ({error!r})") from error
            # Counted here once acknowledged, rather than by a callback on the delivery: one loop callback less.
            started = metrics.handed()
            try:
                metadata = await self._acknowledged(topic, delivery)
            finally:
                if delivery.done():
                    metrics.sent(topic.name, started, delivery)
                else:  # the caller was cancelled before the delivery could be
                    delivery.add_done_callback(functools.partial(metrics.sent, topic.name, started))
        finally:
            self._in_flight -= 1
        return Published(event_id, metadata.topic, metadata.partition, metadata.offset)

    async def _acknowledged(self, topic: Topic, delivery: "asyncio.Future[Any]") -> Any:
        watched = self._deadlines.watch(delivery)
        try:
            return await delivery
        except ERRORS.any as error:
            raise PublishError(f"{topic.name}: no acknowledgement within {self._timeout:g} s ({error!r})") from error
        except asyncio.CancelledError as error:
            task = asyncio.current_task()
            if not delivery.cancelled() or (task is not None and task.cancelling()):
                raise  # the caller is cancelled, not the delivery
            raise PublishError(f"{topic.name}: no acknowledgement within {self._timeout:g} s") from error
        finally:
            watched.discard(delivery)


class AckDeadlines:
    """Cancels each watched delivery still pending `seconds` after it began, as `asyncio.timeout` would, but with
    one timer for all the deliveries begun within the same `resolution` seconds instead of a timer each: a timer
    per event is a heap entry pushed, cancelled and swept by the loop, a large part of the publish path's CPU. A
    slot's timer fires `seconds` after the slot began, so a delivery is given up at most `resolution` early, never
    late."""

    def __init__(self, seconds: float, resolution: float = 0.01) -> None:
        self._seconds = seconds
        self._resolution = resolution
        self._slots: dict[int, set[asyncio.Future[Any]]] = {}

    def watch(self, delivery: "asyncio.Future[Any]") -> set["asyncio.Future[Any]"]:
        """Watch `delivery`; returns the set it is in, for the caller to discard it from once it resolved."""
        loop = asyncio.get_running_loop()
        slot = int(loop.time() / self._resolution)
        watched = self._slots.get(slot)
        if watched is None:
            watched = self._slots[slot] = set()
            loop.call_at(slot * self._resolution + self._seconds, self._expire, slot)
        watched.add(delivery)
        return watched

    def _expire(self, slot: int) -> None:
        for delivery in self._slots.pop(slot):
            delivery.cancel()
