"""Processed event ids in PostgreSQL: one table shared by every pod of the consumer group, so a partition that moves
to another pod (a rebalance, a crash) does not hand it events it cannot recognise.

Each event is handled inside a database transaction that first inserts its id. The insert of an id another pod
is still handling waits for that pod's transaction: committed, this pod skips the event; rolled back (the pod
died), this pod handles it. The id commits once the handler returned and its emitted events were acknowledged.
That wait is bounded by `lock_timeout_seconds` at a time (then logged and tried again, so a shutdown or a revoke
can end it), and the pod holding the row waits a bounded time for its acknowledgements (the runner's bound).
A handler whose own writes go to this database can make them in `current_transaction()`: then they commit
together with the id, once, whatever crashes.
"""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any
from uuid import UUID

import asyncpg

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS processed_events (
    consumer_group text NOT NULL,
    event_id uuid NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, event_id)
);
CREATE INDEX IF NOT EXISTS processed_events_processed_at ON processed_events (processed_at);
"""

_transaction: ContextVar[Any] = ContextVar("processed_events_transaction", default=None)


def current_transaction() -> Any:
    """The asyncpg connection whose transaction records the event being handled (None outside one): writes made
    through it commit with the event's id, or not at all. Make them in `connection.transaction()` (a savepoint),
    so a failed attempt's writes roll back before the retry."""
    return _transaction.get()


class PostgresProcessedEvents:
    def __init__(
        self, url: str, consumer_group: str, retention_hours: float, pool_size: int, lock_timeout_seconds: float = 10.0
    ) -> None:
        self._url = url
        self._lock_timeout_ms = max(1, int(lock_timeout_seconds * 1000))
        self._group = consumer_group
        self._retention_seconds = retention_hours * 3600
        self._pool_size = pool_size
        self._pool: Any = None
        self._expiry: asyncio.Task[None] | None = None

    async def open(self) -> None:
        self._pool = await asyncpg.create_pool(self._url, min_size=1, max_size=self._pool_size)
        async with self._pool.acquire() as connection, connection.transaction():
            # Pods start together: one creates the table, the others wait for it.
            await connection.execute("SELECT pg_advisory_xact_lock(hashtext('processed_events'))")
            await connection.execute(SCHEMA)
        self._expiry = asyncio.create_task(self._expire_periodically(), name="processed-events-expiry")

    async def close(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
            await asyncio.gather(self._expiry, return_exceptions=True)
        if self._pool is not None:
            await self._pool.close()

    @asynccontextmanager
    async def once(self, event_id: UUID) -> AsyncIterator[bool]:
        async with self._pool.acquire() as connection:
            transaction, first = await self._insert(connection, event_id)
            token = _transaction.set(connection)
            try:
                yield first
            except BaseException:
                await transaction.rollback()
                raise
            else:
                await transaction.commit()
            finally:
                _transaction.reset(token)

    async def _insert(self, connection: Any, event_id: UUID) -> tuple[Any, bool]:
        """Begin the event's transaction with its id inserted; whether this is its first processing. Waits for a
        pod still processing it, `lock_timeout_seconds` at a time."""
        while True:
            transaction = connection.transaction()
            await transaction.start()
            try:
                # The bound applies to the handler's own writes in `current_transaction()` too: a failed attempt.
                await connection.execute(f"SET LOCAL lock_timeout = {self._lock_timeout_ms}")
                first = await connection.fetchval(
                    "INSERT INTO processed_events (consumer_group, event_id) VALUES ($1, $2) "
                    "ON CONFLICT DO NOTHING RETURNING true",
                    self._group,
                    event_id,
                )
            except asyncpg.exceptions.LockNotAvailableError:
                await transaction.rollback()
                # Another pod still processes this event (or died holding it, until its connection drops).
                log.warning("event %s is still being processed elsewhere; waiting for it", event_id)
                continue
            except BaseException:
                await transaction.rollback()
                raise
            return transaction, first is True

    async def contains(self, event_id: UUID) -> bool:
        found = await self._pool.fetchval(
            "SELECT true FROM processed_events WHERE consumer_group = $1 AND event_id = $2", self._group, event_id
        )
        return found is True

    async def expire(self) -> int:
        """Forget ids processed longer than the retention ago; returns how many."""
        status = await self._pool.execute(
            "DELETE FROM processed_events WHERE consumer_group = $1 "
            "AND processed_at < now() - make_interval(secs => $2)",
            self._group,
            self._retention_seconds,
        )
        return int(str(status).split()[-1])

    async def _expire_periodically(self) -> None:
        interval = min(self._retention_seconds / 10, 3600.0)
        while True:
            try:
                expired = await self.expire()
            except (OSError, asyncpg.PostgresError) as error:
                log.warning("expiring processed event ids failed: %r", error)
            else:
                if expired:
                    log.info("forgot %d processed event ids older than the retention", expired)
            await asyncio.sleep(interval)
