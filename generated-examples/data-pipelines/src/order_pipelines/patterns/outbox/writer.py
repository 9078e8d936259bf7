"""Writing an event with its domain row in one database transaction, bounded in time: committed, the event will
reach its topic (Debezium reads the commit from the write-ahead log); not committed, nothing of it exists. When the
bound runs out while the commit is under way, the transaction's status is asked on another connection: the answer
says written only when it committed, nothing written only when it aborted, and otherwise that the outcome is
unknown; a retry with the same event_id is then safe, as an event already written is not written again."""

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

import asyncpg

from ...events.catalog import ORDERS, Topic, topic_for
from ...events.models import Event
from ...events.serde import EventSerde
from ...kafka.producer import Published, Publisher, PublishError, UnpublishableEvent, event_headers

log = logging.getLogger(__name__)

OUTBOX_TOPICS: frozenset[str] = frozenset({ORDERS.name})

# The domain row of each outbox topic: the latest event per key. Replace it with the service's own writes; keep
# them in `write`'s transaction.
UPSERT: dict[str, str] = {
    ORDERS.name: (
        "INSERT INTO orders (order_id, event_id, event_type, occurred_at, data) "
        "VALUES ($1, $2, $3, $4, $5::jsonb) ON CONFLICT (order_id) DO UPDATE SET "
        "event_id = excluded.event_id, event_type = excluded.event_type, "
        "occurred_at = excluded.occurred_at, data = excluded.data"
    ),
}

# Whether the event is written already: the domain row holds its key's latest event id. A client retrying an event
# whose first answer did not say (a commit left unconfirmed) gets it written once.
ALREADY_WRITTEN: dict[str, str] = {
    ORDERS.name: "SELECT EXISTS (SELECT 1 FROM orders WHERE order_id = $1 AND event_id = $2)",
}

INSERT_EVENT = (
    "INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload, correlation_id, causation_id) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7)"
)
# In the same transaction: the write-ahead log keeps the insert for Debezium, and the table stays empty.
DELETE_EVENT = "DELETE FROM outbox WHERE id = $1"

# What a database that is down, restarting or refusing looks like to asyncpg. InternalClientError: a connection
# released after its server went away mid-operation ("cannot switch to state ...").
UNAVAILABLE = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError)


class DatabaseUnavailable(PublishError):
    """The transaction did not commit in time: nothing was written, retry with the same event_id."""


class OutcomeUnknown(DatabaseUnavailable):
    """The commit was under way when the bound ran out, and the database could not say how it ended: the event may
    be written. A retry with the same event_id writes it at most once."""


@dataclass
class Attempt:
    """How far one write got: its transaction's id, and whether its COMMIT was sent."""

    transaction: int | None = None
    committing: bool = False


class OutboxWriter:
    def __init__(self, url: str, serde: EventSerde, timeout_seconds: float, pool_size: int) -> None:
        self._url = url
        self._serde = serde
        self._timeout = timeout_seconds
        self._pool_size = pool_size
        self._pool: Any = None

    async def open(self) -> None:
        # No connection yet (min_size=0): the service starts while the database is down, unready until it is up.
        self._pool = await asyncpg.create_pool(
            self._url,
            min_size=0,
            max_size=self._pool_size,
            timeout=self._timeout,
            command_timeout=self._timeout,
            max_inactive_connection_lifetime=60,
        )

    async def close(self) -> None:
        if self._pool is not None:
            try:
                await asyncio.wait_for(self._pool.close(), self._timeout)
            except TimeoutError:
                self._pool.terminate()

    async def reachable(self, timeout_seconds: float) -> bool:
        """A real round trip to the database, for readiness."""
        try:
            async with asyncio.timeout(timeout_seconds):
                await self._pool.fetchval("SELECT 1")
        except UNAVAILABLE:
            return False
        return True

    async def write(self, event: Event) -> Published:
        topic = topic_for(event)
        try:
            payload = await self._serde.serialize(topic, event)
        except (ValueError, TypeError) as error:
            raise UnpublishableEvent(f"{type(event).__name__} cannot be encoded: {error}") from error
        attempt = Attempt()
        try:
            async with asyncio.timeout(self._timeout):
                await self._commit(topic, event, payload, attempt)
        except asyncpg.DataError as error:
            # A value PostgreSQL cannot store (a NUL character in text, for one): no retry fixes it.
            raise UnpublishableEvent(f"{type(event).__name__} cannot be stored: {error}") from error
        except UNAVAILABLE as error:
            status = await self._status(attempt.transaction) if attempt.committing else "aborted"
            if status != "committed":
                raise self._unavailable(topic, status, error) from error
            log.warning("%s: the commit of event %s was confirmed only afterwards", topic.name, event.event_id)
        return Published(str(event.event_id), topic.name, None, None)

    def _unavailable(self, topic: Topic, status: str | None, error: BaseException) -> DatabaseUnavailable:
        if status == "aborted":
            return DatabaseUnavailable(
                f"{topic.name}: the database did not commit within {self._timeout:g} s ({error!r}); nothing was "
                "written: retry with the same event_id"
            )
        return OutcomeUnknown(
            f"{topic.name}: the database did not confirm the commit within {self._timeout:g} s ({error!r}); the "
            "event may have been written: retry with the same event_id, which writes it at most once"
        )

    async def _status(self, transaction: int | None) -> str | None:
        """How a transaction whose COMMIT was sent ended, asked on another connection: committed, aborted, in
        progress, or None when the database cannot say within the bound."""
        if transaction is None:
            return None
        try:
            async with asyncio.timeout(self._timeout):
                status: str | None = await self._pool.fetchval("SELECT txid_status($1)", transaction)
        except UNAVAILABLE:
            return None
        return status

    async def _commit(self, topic: Topic, event: Event, payload: bytes, attempt: Attempt) -> None:
        headers = {name: value.decode() for name, value in event_headers(event)}
        key = topic.key_of(event).decode()
        async with self._pool.acquire() as connection, connection.transaction():
            if await connection.fetchval(ALREADY_WRITTEN[topic.name], key, event.event_id):
                log.info("%s: event %s is written already; not again", topic.name, event.event_id)
                return
            attempt.transaction = await connection.fetchval("SELECT txid_current()")
            await connection.execute(
                UPSERT[topic.name],
                key,
                event.event_id,
                type(event).__name__,
                event.occurred_at,
                json.dumps(event.model_dump(mode="json")),
            )
            await connection.execute(
                INSERT_EVENT,
                event.event_id,
                topic.name,
                key,
                headers["event-type"],
                payload,
                headers["correlation-id"],
                headers["causation-id"],
            )
            await connection.execute(DELETE_EVENT, event.event_id)
            attempt.committing = True  # what is left is the COMMIT: from here on, the outcome may be unknown


class TransactionalPublisher:
    """What POST publishes through: the outbox topics' events go to the database, the others straight to Kafka."""

    def __init__(self, direct: Publisher, outbox: OutboxWriter) -> None:
        self.direct = direct
        self.outbox = outbox

    async def publish(self, event: Event) -> Published:
        if topic_for(event).name in OUTBOX_TOPICS:
            return await self.outbox.write(event)
        return await self.direct.publish(event)
