"""The transactional outbox on the real stack: PostgreSQL, Kafka Connect and Debezium's outbox event router.

A POST commits the domain row and the event in one transaction and answers 202; Debezium then publishes the
event, and the record it writes is the record a direct publish of the same event writes: same key, same
partition, same headers, same bytes. Records are read back with confluent-kafka (librdkafka) and decoded with
its Avro deserializer and the registry: neither is the service's code. Without its database the service answers
503 within its bound, and is not ready.
"""

import asyncio
import socket
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest
from confluent_kafka import Consumer, Message
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext
from fastapi import FastAPI

from order_pipelines import correlation
from order_pipelines.database.settings import DatabaseSettings
from order_pipelines.events.catalog import topic_named
from order_pipelines.main import chosen_plugins, create_app
from order_pipelines.patterns.outbox import plugin as outbox
from order_pipelines.patterns.outbox.writer import OUTBOX_TOPICS, TransactionalPublisher
from order_pipelines.settings import Settings
from tests.samples import ROUTES, sample_event, unique_key

from .service import running_service, service_settings

pytestmark = pytest.mark.integration

TOPIC = topic_named(sorted(OUTBOX_TOPICS)[0])
ROUTE = ROUTES[TOPIC.name]


def records_of(bootstrap: str, topic: str, event_id: str, count: int, within: float = 90) -> list[Message]:
    """The records on `topic` whose event-id header is `event_id`, read from the beginning with librdkafka until
    `count` of them arrived."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"probe-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    found: list[Message] = []
    deadline = time.monotonic() + within
    try:
        while len(found) < count and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error() is not None:
                continue
            if dict(message.headers() or []).get("event-id") == event_id.encode():
                found.append(message)
    finally:
        consumer.close()
    assert len(found) == count, f"{len(found)} of {count} records of event {event_id} on {topic} after {within:g} s"
    return found


async def test_a_post_reaches_its_topic_as_a_direct_publish_of_the_same_event_would(
    connectors: None, kafka_bootstrap: str, schema_registry_url: str, unique: str
) -> None:
    settings = service_settings(kafka_bootstrap, unique)
    app = create_app(settings)
    event = sample_event(TOPIC, key=unique_key(TOPIC))
    work = f"outbox-{unique}"
    async with running_service(settings, app) as client:
        response = await client.post(ROUTE, json=event.model_dump(mode="json"), headers={correlation.HTTP_HEADER: work})
        assert response.status_code == 202, response.text
        assert response.json() == {
            "event_id": str(event.event_id),
            "topic": TOPIC.name,
            "partition": None,
            "offset": None,
        }

        # The same event, in the same unit of work, sent straight to Kafka by the service's producer.
        publisher: TransactionalPublisher = app.state.publisher
        correlation.begin(work)
        await publisher.direct.publish(event)

    via_outbox, direct = await asyncio.to_thread(records_of, kafka_bootstrap, TOPIC.name, str(event.event_id), 2)
    assert via_outbox.key() == direct.key() == TOPIC.key_of(event)
    assert via_outbox.partition() == direct.partition()
    assert via_outbox.headers() == direct.headers()
    assert dict(via_outbox.headers() or []) == {
        "event-type": type(event).__name__.encode(),
        "event-id": str(event.event_id).encode(),
        "correlation-id": work.encode(),
        "causation-id": work.encode(),
    }
    assert via_outbox.value() == direct.value(), "the Confluent-framed Avro bytes the service's serializer made"
    decoded = AvroDeserializer(SchemaRegistryClient({"url": schema_registry_url}))(
        via_outbox.value(), SerializationContext(TOPIC.name, MessageField.VALUE)
    )
    assert decoded | {"event_id": str(decoded["event_id"])} == event.model_dump(exclude={"type"}) | {
        "event_id": str(event.event_id)
    }


async def test_the_domain_row_commits_with_the_event_and_the_outbox_stays_empty(
    connectors: None, kafka_bootstrap: str, local_stack: dict[str, str], unique: str
) -> None:
    first = sample_event(TOPIC, key=unique_key(TOPIC))
    key = str(getattr(first, TOPIC.key_field))
    later = sample_event(TOPIC, TOPIC.event_types[-1], key=key)
    async with running_service(service_settings(kafka_bootstrap, unique, consumer_enabled=False)) as client:
        for event in (first, later):
            response = await client.post(ROUTE, json=event.model_dump(mode="json"))
            assert response.status_code == 202, response.text
    connection = await asyncpg.connect(local_stack["DATABASE_URL"])
    try:
        row = await connection.fetchrow(
            "SELECT event_id, event_type FROM orders WHERE order_id = $1",
            key,
        )
        assert row is not None
        assert (row["event_id"], row["event_type"]) == (later.event_id, type(later).__name__), "the latest per key"
        assert await connection.fetchval("SELECT count(*) FROM outbox") == 0, "rows are deleted as they are written"
    finally:
        await connection.close()
    for event in (first, later):
        (record,) = await asyncio.to_thread(records_of, kafka_bootstrap, TOPIC.name, str(event.event_id), 1)
        assert record.key() == key.encode()


@pytest.fixture(params=["refused", "silent"])
def unreachable_database(request: pytest.FixtureRequest) -> Iterator[str]:
    """A database URL where nothing answers: a closed port (refused at once), or a listener that never speaks (the
    client waits for its bound)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        if request.param == "silent":
            listener.listen()
            yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
            return
    yield f"postgresql://postgres@127.0.0.1:{port}/postgres"


def app_with_database(settings: Settings, **database: Any) -> FastAPI:
    """The app, its outbox writing to the database `database` describes (DatabaseSettings' fields)."""
    plugins = [outbox.plugin(DatabaseSettings(**database)) if p.name == "outbox" else p for p in chosen_plugins()]
    return create_app(settings, plugins=plugins)


async def test_without_its_database_post_answers_503_within_its_bound_and_the_service_is_not_ready(
    kafka_bootstrap: str, unreachable_database: str, unique: str
) -> None:
    bound = 2.0
    settings = service_settings(kafka_bootstrap, unique, consumer_enabled=False, ready_timeout_seconds=bound)
    app = app_with_database(settings, url=unreachable_database, timeout_seconds=bound)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            started = time.monotonic()
            response = await client.post(ROUTE, json=sample_event(TOPIC).model_dump(mode="json"))
            waited = time.monotonic() - started
            assert response.status_code == 503, response.text
            assert response.headers["Retry-After"]
            assert waited < 2 * bound + 1, f"answered after {waited:.1f} s, past its bound of {bound:g} s"
            ready = await client.get("/health/ready")
            assert ready.status_code == 503
            assert ready.json()["database"] is False
            assert ready.json()["broker"] is True


class CommitReplyLost:
    """A TCP proxy in front of PostgreSQL that, once armed, passes one COMMIT on and loses every reply of the server
    on that connection from then on: the transaction commits, and the service never hears of it (a network cut, a
    proxy or a pod dying at the worst moment)."""

    def __init__(self, database_url: str) -> None:
        self.target = urllib.parse.urlsplit(database_url)
        self.armed = False
        self.lost = 0

    async def start(self) -> str:
        """Listen; the database URL that goes through the proxy."""
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        credentials = self.target.netloc.rsplit("@", 1)[0]
        return urllib.parse.urlunsplit(self.target._replace(netloc=f"{credentials}@127.0.0.1:{port}"))

    async def _serve(self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter) -> None:
        server_in, server_out = await asyncio.open_connection(self.target.hostname, self.target.port)
        cut = asyncio.Event()

        async def to_server() -> None:
            while data := await client_in.read(65536):
                if self.armed and b"COMMIT" in data:
                    self.armed = False
                    self.lost += 1
                    cut.set()  # before the COMMIT goes: its reply must not get through
                server_out.write(data)
                await server_out.drain()

        async def to_client() -> None:
            while data := await server_in.read(65536):
                if not cut.is_set():
                    client_out.write(data)
                    await client_out.drain()

        await asyncio.gather(to_server(), to_client(), return_exceptions=True)
        for writer in (client_out, server_out):
            writer.close()

    async def stop(self) -> None:
        self.server.close()


def records_up_to(bootstrap: str, topic: str, marker_id: str, within: float = 90) -> list[Message]:
    """Every record on `topic` up to the one whose event-id header is `marker_id`, read with librdkafka."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"probe-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    found: list[Message] = []
    deadline = time.monotonic() + within
    try:
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error() is not None:
                continue
            found.append(message)
            if dict(message.headers() or []).get("event-id") == marker_id.encode():
                return found
    finally:
        consumer.close()
    raise AssertionError(f"event {marker_id} not on {topic} after {within:g} s")


async def test_a_commit_whose_reply_is_lost_is_not_answered_unwritten_and_its_retry_writes_no_second_event(
    connectors: None, kafka_bootstrap: str, local_stack: dict[str, str], unique: str
) -> None:
    """The bound runs out while the COMMIT is under way: the answer may not say "nothing written" (the commit may
    have happened), and the client's retry with the same event_id must not put the event on its topic twice."""
    proxy = CommitReplyLost(local_stack["DATABASE_URL"])
    settings = service_settings(kafka_bootstrap, unique, consumer_enabled=False)
    app = app_with_database(settings, url=await proxy.start(), timeout_seconds=2)
    event = sample_event(TOPIC, key=unique_key(TOPIC))
    # The same key, so the same partition: written after the event and its retry, it arrives after them.
    marker = sample_event(TOPIC, TOPIC.event_types[-1], key=str(getattr(event, TOPIC.key_field)))
    try:
        async with running_service(settings, app) as client:
            proxy.armed = True
            first = await client.post(ROUTE, json=event.model_dump(mode="json"))
            assert proxy.lost == 1, "the COMMIT's reply was not lost"
            if first.status_code != 202:
                assert first.status_code == 503, first.text
                assert "may have been written" in first.json()["detail"], "the outcome is unknown, not nothing"
            retried = await client.post(ROUTE, json=event.model_dump(mode="json"))  # as a client may, either way
            assert retried.status_code == 202, retried.text
            assert (await client.post(ROUTE, json=marker.model_dump(mode="json"))).status_code == 202
    finally:
        await proxy.stop()
    records = await asyncio.to_thread(records_up_to, kafka_bootstrap, TOPIC.name, str(marker.event_id))
    written = [r for r in records if dict(r.headers() or []).get("event-id") == str(event.event_id).encode()]
    assert len(written) == 1, f"the event is on {TOPIC.name} {len(written)} times"
