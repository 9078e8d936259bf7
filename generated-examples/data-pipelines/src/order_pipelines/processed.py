"""Which events were already handled, so a redelivered event (at-least-once) has no second side effect.

Three stores, chosen by settings: PostgreSQL (`PROCESSED_EVENTS_URL`, in `processed_postgres`) is shared by every
pod of the consumer group and survives them all; SQLite (`PROCESSED_EVENTS_PATH`) survives a restart of one
process but no other pod sees it; memory (neither set) forgets on restart. Only the first holds when partitions
move between pods, which is what a rebalance or a crash does.
"""

import asyncio
import sqlite3
from collections import OrderedDict
from contextlib import AbstractAsyncContextManager
from typing import Protocol
from uuid import UUID


class ProcessedEvents(Protocol):
    def once(self, event_id: UUID) -> AbstractAsyncContextManager[bool]:
        """Entered before the event is handled: yields false if it was processed already. Leaving without an
        error records the id (call it once the side effects are done and the emitted events acknowledged); an
        error or a cancellation leaves it unrecorded, so the redelivered event is handled again."""
        ...

    async def open(self) -> None: ...

    async def close(self) -> None: ...


class CheckThenRecord:
    """`once` for stores private to this process: nobody else handles the same event at the same time.

    Within the process, an id is claimed from `once` until its record: the runner lets the next record of a key
    start while the previous one waits for its acknowledgements, and a client's retry of the same event (same id,
    same key) must wait to see it recorded rather than be handled a second time."""

    def __init__(self) -> None:
        self._claimed: dict[UUID, asyncio.Event] = {}

    async def contains(self, event_id: UUID) -> bool:
        raise NotImplementedError

    async def add(self, event_id: UUID) -> None:
        raise NotImplementedError

    def once(self, event_id: UUID) -> "_Once":
        return _Once(self, event_id)

    async def claim(self, event_id: UUID) -> bool:
        """Wait until no other `once` holds `event_id`, then hold it; whether it is yet to be processed."""
        while (holder := self._claimed.get(event_id)) is not None:
            await holder.wait()
        self._claimed[event_id] = asyncio.Event()
        try:
            return not await self.contains(event_id)
        except BaseException:
            self.unclaim(event_id)
            raise

    def unclaim(self, event_id: UUID) -> None:
        holder = self._claimed.pop(event_id, None)
        if holder is not None:
            holder.set()

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass


class _Once:
    """`CheckThenRecord.once`, as a class rather than a generator: it runs for every consumed record."""

    __slots__ = ("_event_id", "_first", "_store")

    def __init__(self, store: CheckThenRecord, event_id: UUID) -> None:
        self._store = store
        self._event_id = event_id
        self._first = False

    async def __aenter__(self) -> bool:
        self._first = await self._store.claim(self._event_id)
        return self._first

    async def __aexit__(self, error_type: type[BaseException] | None, *_: object) -> None:
        try:
            if error_type is None and self._first:
                await self._store.add(self._event_id)
        finally:
            self._store.unclaim(self._event_id)


class InMemoryProcessedEvents(CheckThenRecord):
    """Remembers the most recent `capacity` event ids of this process: a development default.

    Enough when redeliveries come soon after the original to the same process. A process that dies forgets them,
    and another pod never knew them: use the PostgreSQL store in a deployment.
    """

    def __init__(self, capacity: int = 100_000) -> None:
        super().__init__()
        self._seen: OrderedDict[UUID, None] = OrderedDict()
        self._capacity = capacity

    async def contains(self, event_id: UUID) -> bool:
        return event_id in self._seen

    async def add(self, event_id: UUID) -> None:
        self._seen[event_id] = None
        self._seen.move_to_end(event_id)
        if len(self._seen) > self._capacity:
            self._seen.popitem(last=False)


class SqliteProcessedEvents(CheckThenRecord):
    """Event ids in a SQLite file: they survive a killed process (write-ahead log; not a lost disk), but only the
    process that owns the file sees them."""

    def __init__(self, path: str) -> None:
        super().__init__()
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

    async def close(self) -> None:
        self._db.close()
