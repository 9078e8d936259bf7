"""Which events were already handled, so a redelivered event (at-least-once) has no second side effect."""

import asyncio
import sqlite3
from collections import OrderedDict
from typing import Protocol
from uuid import UUID


class ProcessedEvents(Protocol):
    async def contains(self, event_id: UUID) -> bool: ...

    async def add(self, event_id: UUID) -> None:
        """Called once the event's side effects are done and its emitted events acknowledged."""
        ...


class InMemoryProcessedEvents:
    """Remembers the most recent `capacity` event ids of this process.

    Enough when redeliveries come soon after the original (a rebalance). A process that dies forgets them:
    use `SqliteProcessedEvents`, or keep the ids in the same database transaction as the side effect.
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


class SqliteProcessedEvents:
    """Event ids in a SQLite file: they survive a killed process (write-ahead log; not a lost disk)."""

    def __init__(self, path: str) -> None:
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS processed (event_id TEXT PRIMARY KEY)")
        self._lock = asyncio.Lock()

    async def contains(self, event_id: UUID) -> bool:
        async with self._lock:
            row = await asyncio.to_thread(
                self._db.execute, "SELECT 1 FROM processed WHERE event_id = ?", (str(event_id),)
            )
            return row.fetchone() is not None

    async def add(self, event_id: UUID) -> None:
        async with self._lock:
            await asyncio.to_thread(
                self._db.execute, "INSERT OR IGNORE INTO processed (event_id) VALUES (?)", (str(event_id),)
            )

    def close(self) -> None:
        self._db.close()
