"""The outbox as a plug-in: POST on an outbox topic writes the event to the database in its transaction, and
readiness asks whether the database answers."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ...database.settings import DatabaseSettings
from ...plugins import Plugin, Running
from .writer import OutboxWriter, TransactionalPublisher


def plugin(settings: DatabaseSettings | None = None) -> Plugin:
    database = settings or DatabaseSettings()  # read as the app is built, not cached

    @asynccontextmanager
    async def lifespan(running: Running) -> AsyncIterator[None]:
        if database.url is None:
            raise RuntimeError("DATABASE_URL is not set: the outbox topics' POST routes write to the database")
        outbox = OutboxWriter(
            database.url.get_secret_value(), running.serde, database.timeout_seconds, database.pool_size
        )
        await outbox.open()
        running.publisher = TransactionalPublisher(running.publisher, outbox)
        # POST on an outbox topic needs the database: without it the service cannot take those requests.
        running.ready["database"] = outbox.reachable
        try:
            yield
        finally:
            await outbox.close()

    return Plugin(name="outbox", lifespan=lifespan)
