"""Which events were already handled, so a redelivered event (at-least-once) has no second side effect."""

from collections import OrderedDict
from typing import Protocol
from uuid import UUID


class ProcessedEvents(Protocol):
    async def contains(self, event_id: UUID) -> bool: ...

    async def add(self, event_id: UUID) -> None:
        """Called once the event's side effects are done."""
        ...


class InMemoryProcessedEvents:
    """Remembers the most recent `capacity` event ids of this process.

    Enough when redeliveries come soon after the original (a crash, a rebalance). Where side effects must never
    repeat across restarts, keep the ids in the same database transaction as the side effect instead.
    """

    def __init__(self, capacity: int = 100_000) -> None:
        self._seen: OrderedDict[UUID, None] = OrderedDict()
        self._capacity = capacity

    async def contains(self, event_id: UUID) -> bool:
        return event_id in self._seen

    async def add(self, event_id: UUID) -> None:
        self._seen[event_id] = None
        self._seen.move_to_end(event_id)
        if len(self._seen) > self._capacity:
            self._seen.popitem(last=False)
