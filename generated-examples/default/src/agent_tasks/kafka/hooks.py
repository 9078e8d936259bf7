"""Hooks on what the service's producers send: a plug-in writes a record of its own with each event published and
each record processed, with the same producer, so that under exactly-once it commits or aborts with the work it
describes."""

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .port import Producer, Record

Headers = Sequence[tuple[str, bytes]]


class PublishedHook(Protocol):
    """Called as an event is sent to `topic`; returns the delivery of what the hook sent."""

    async def __call__(self, producer: Producer, topic: str, key: bytes, headers: Headers) -> "asyncio.Future[Any]": ...


class ProcessedHook(Protocol):
    """Called as a consumed record's outcome is written ("handled", "dead-lettered", "delivered"); `by` names who
    processed it where a service has several consumers of a topic. Returns the delivery of what the hook sent."""

    async def __call__(
        self, producer: Producer, record: Record, outcome: str, by: str | None = None
    ) -> "asyncio.Future[Any]": ...


@dataclass(frozen=True)
class Hooks:
    published: tuple[PublishedHook, ...] = ()
    processed: tuple[ProcessedHook, ...] = ()

    async def on_published(
        self, producer: Producer, topic: str, key: bytes, headers: Headers, delivery: "asyncio.Future[Any]"
    ) -> "asyncio.Future[Any]":
        """`delivery`, or with hooks a future of it that resolves once what every hook sent is acknowledged too."""
        if not self.published:
            return delivery
        noted = [await hook(producer, topic, key, headers) for hook in self.published]
        return together(delivery, noted)

    async def on_processed(
        self, producer: Producer, record: Record, outcome: str, by: str | None = None
    ) -> list["asyncio.Future[Any]"]:
        """The deliveries of what the hooks sent for `record`."""
        return [await hook(producer, record, outcome, by) for hook in self.processed]


NO_HOOKS = Hooks()


def together(delivery: "asyncio.Future[Any]", noted: list["asyncio.Future[Any]"]) -> "asyncio.Future[Any]":
    """A future of `delivery`'s result once `noted` are acknowledged too; cancelling it cancels `delivery`."""

    async def acknowledged() -> Any:
        try:
            for future in noted:
                await future
            return await delivery
        except asyncio.CancelledError:
            delivery.cancel()  # a caller giving up on both gives up on the event's send too
            raise

    return asyncio.ensure_future(acknowledged())
