"""The launcher's Kafka Connect piece with Debezium, on its PostgreSQL and Kafka: change data capture, the outbox
event router carrying bytes unchanged, a worker crash after which every committed change is on the topic exactly
once, and a `down` that drops the replication slots and publications the connectors made.

Changes are written with psycopg and read back with confluent-kafka (librdkafka): neither is the launcher's code.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import struct
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from confluent_kafka import Consumer, Message

from tests.conftest import stack_command
from tests.launcher.test_stack_postgres import processes_of
from tools.stack import kafka_stack

POSTGRES_CONNECTOR = "io.debezium.connector.postgresql.PostgresConnector"
DEADLINE_S = 90.0


@dataclass(frozen=True)
class Stack:
    state_dir: Path
    settings: dict[str, str]

    @property
    def connect_url(self) -> str:
        return self.settings["KAFKA_CONNECT_URL"]

    @property
    def database_url(self) -> str:
        return self.settings["DATABASE_URL"]

    @property
    def postgres_port(self) -> int:
        return int(self.database_url.rsplit(":", 1)[1].split("/")[0])


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    # Not under pytest's basetemp: as root, PostgreSQL runs as an unprivileged user that must pass through the
    # folders above its data, and every pytest session that starts resets /tmp/pytest-of-root to 0700.
    state_dir = Path(tempfile.mkdtemp(prefix="kafka-stack-connect-"))
    up = subprocess.run(
        [*stack_command(state_dir), "up", "--with", "postgres,connect"], capture_output=True, text=True, check=False
    )
    try:
        assert up.returncode == 0, up.stderr
        yield Stack(state_dir, dict(line.split("=", 1) for line in up.stdout.split()))
    finally:
        subprocess.run([*stack_command(state_dir), "down"], check=True)
        shutil.rmtree(state_dir, ignore_errors=True)


# --- helpers: the Connect REST API, PostgreSQL and the topic -------------------------------------------------------


def rest(stack: Stack, path: str, body: object = None, method: str = "GET") -> object:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{stack.connect_url}{path}", data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        raw = response.read()
    return json.loads(raw) if raw else None


def source_config(stack: Stack, name: str, table: str) -> dict[str, str]:
    """A Debezium PostgreSQL source of one table: pgoutput, its own slot and a publication of that table only."""
    return {
        "connector.class": POSTGRES_CONNECTOR,
        "plugin.name": "pgoutput",
        "database.hostname": "127.0.0.1",
        "database.port": str(stack.postgres_port),
        "database.user": "postgres",
        "database.dbname": "postgres",
        "topic.prefix": name,
        "table.include.list": f"public.{table}",
        "slot.name": f"{name}_slot",
        "publication.name": f"{name}_publication",
        "publication.autocreate.mode": "filtered",
        # Kafka Connect creates the topics the source writes (the stack's broker creates none on its own).
        "topic.creation.default.replication.factor": "1",
        "topic.creation.default.partitions": "1",
    }


def register(stack: Stack, name: str, config: dict[str, str]) -> None:
    """Create the connector and wait until its task streams: running, and its replication slot in use."""
    rest(stack, f"/connectors/{name}/config", config, method="PUT")
    await_running(stack, name)


def await_running(stack: Stack, name: str) -> None:
    slot = f"{name}_slot"
    deadline = time.monotonic() + DEADLINE_S
    status: object = None
    while time.monotonic() < deadline:
        try:
            status = rest(stack, f"/connectors/{name}/status")
        except (OSError, urllib.error.URLError):
            status = None
        if isinstance(status, dict):
            tasks = status.get("tasks") or []
            failed = [task.get("trace", "") for task in tasks if task["state"] == "FAILED"]
            assert not failed, f"connector {name} failed: {failed}\n{logs(stack)}"
            if status["connector"]["state"] == "RUNNING" and tasks and tasks[0]["state"] == "RUNNING":
                rows = query(stack, "SELECT active FROM pg_replication_slots WHERE slot_name = %s", slot)
                if rows and rows[0][0]:
                    return
        time.sleep(0.3)
    raise AssertionError(f"connector {name} is not streaming after {DEADLINE_S:.0f} s: {status}\n{logs(stack)}")


def logs(stack: Stack) -> str:
    """The ends of the worker's and the server's logs, for a failure's message."""
    return "\n".join(
        f"--- {name}:\n{kafka_stack.tail(stack.state_dir / name / log, 15)}"
        for name, log in [("connect", "connect.log"), ("postgres", "postgres.log")]
    )


def query(stack: Stack, sql: str, *params: object) -> list[tuple[object, ...]]:
    with psycopg.connect(stack.database_url, autocommit=True) as connection:
        return connection.execute(sql, params).fetchall()


def execute(stack: Stack, *statements: str) -> None:
    """The statements in one transaction."""
    with psycopg.connect(stack.database_url) as connection:
        for statement in statements:
            connection.execute(statement)


def consume(
    stack: Stack,
    topic: str,
    done: int | None = None,
    until: Callable[[list[Message]], bool] | None = None,
    settle_s: float = 2.0,
    check: bool = True,
) -> list[Message]:
    """Read `topic` from the start with librdkafka until `done` messages arrived or `until(messages)` holds, then for
    `settle_s` more: anything beyond what was expected would be a bug too. Unless `check` is false, fail after
    DEADLINE_S."""
    consumer = Consumer(
        {
            "bootstrap.servers": stack.settings["KAFKA_BOOTSTRAP_SERVERS"],
            "group.id": f"test-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    consumer.subscribe([topic])
    messages: list[Message] = []
    deadline = time.monotonic() + DEADLINE_S
    try:
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                messages.append(message)
            if (done is not None and len(messages) >= done) or (until is not None and until(messages)):
                settled = time.monotonic() + settle_s
                while time.monotonic() < settled:
                    extra = consumer.poll(0.2)
                    if extra is not None and extra.error() is None:
                        messages.append(extra)
                return messages
    finally:
        consumer.close()
    if check:
        raise AssertionError(f"{topic}: {len(messages)} messages after {DEADLINE_S:.0f} s")
    return messages


# --- change data capture ------------------------------------------------------------------------------------------


def test_cdc_snapshots_then_streams_every_change_with_before_after_and_source(stack: Stack) -> None:
    execute(
        stack,
        "CREATE TABLE items (id integer PRIMARY KEY, name text NOT NULL)",
        # Updates and deletes carry the whole old row in `before`, not just the key.
        "ALTER TABLE items REPLICA IDENTITY FULL",
        "INSERT INTO items VALUES (1, 'one'), (2, 'two'), (3, 'three')",
    )
    register(stack, "cdc", {**source_config(stack, "cdc", "items"), "snapshot.mode": "initial"})
    execute(stack, "INSERT INTO items VALUES (4, 'four')")
    execute(stack, "INSERT INTO items VALUES (5, 'five')", "UPDATE items SET name = 'TWO' WHERE id = 2")
    execute(stack, "DELETE FROM items WHERE id = 3")

    # Three snapshot reads, two inserts, one update, one delete and the delete's tombstone (for compaction).
    messages = consume(stack, "cdc.public.items", done=8)
    assert len(messages) == 8
    events = [(json_of(m.key()), json_of(m.value())) for m in messages]
    changes = [(key["id"], value["op"], value["before"], value["after"]) for key, value in events if value]
    assert changes == [
        (1, "r", None, {"id": 1, "name": "one"}),
        (2, "r", None, {"id": 2, "name": "two"}),
        (3, "r", None, {"id": 3, "name": "three"}),
        (4, "c", None, {"id": 4, "name": "four"}),
        (5, "c", None, {"id": 5, "name": "five"}),
        (2, "u", {"id": 2, "name": "two"}, {"id": 2, "name": "TWO"}),
        (3, "d", {"id": 3, "name": "three"}, None),
    ]
    assert events[-1] == ({"id": 3}, None), "a delete is followed by a tombstone for its key"
    sources = [value["source"] for _, value in events if value]
    assert {(s["connector"], s["db"], s["schema"], s["table"]) for s in sources} == {
        ("postgresql", "postgres", "public", "items")
    }
    assert all(s["snapshot"] not in (None, "false") for s in sources[:3]), "the rows there before: a snapshot"
    assert all(s["snapshot"] in (None, "false") for s in sources[3:]), "then the changes: streamed"
    streamed = [s["lsn"] for s in sources[3:]]
    assert streamed == sorted(streamed), "streamed changes come in commit (LSN) order"
    # The update and the insert before it were one transaction: one commit position.
    assert sources[4]["lsn"] < sources[5]["lsn"]
    assert sources[4]["txId"] == sources[5]["txId"]


def json_of(raw: bytes | None) -> Any:
    return None if raw is None else json.loads(raw)


# --- the outbox ---------------------------------------------------------------------------------------------------


def confluent_avro(schema_id: int, order_id: str, amount: int) -> bytes:
    """A record {order_id: string, amount: long} in Confluent's framing: magic byte 0, schema id, Avro binary."""

    def zigzag(value: int) -> bytes:
        encoded, value = bytearray(), (value << 1) ^ (value >> 63)
        while value > 0x7F:
            encoded.append((value & 0x7F) | 0x80)
            value >>= 7
        return bytes([*encoded, value])

    text = order_id.encode()
    return b"\0" + struct.pack(">I", schema_id) + zigzag(len(text)) + text + zigzag(amount)


def test_outbox_rows_reach_their_topic_byte_for_byte_keyed_by_aggregate_with_id_and_type_headers(stack: Stack) -> None:
    execute(
        stack,
        """
        CREATE TABLE outbox (
            id uuid PRIMARY KEY,
            aggregatetype text NOT NULL,
            aggregateid text NOT NULL,
            type text NOT NULL,
            payload bytea NOT NULL
        )
        """,
    )
    config = {
        **source_config(stack, "outbox", "outbox"),
        # Outbox rows written before the connector existed are not replayed: the outbox is a stream, not a table.
        "snapshot.mode": "no_data",
        "tombstones.on.delete": "false",
        # An event published twice after a worker crash would reach consumers twice: records and offsets in one
        # transaction instead.
        "exactly.once.support": "required",
        "transforms": "outbox",
        "transforms.outbox.type": "io.debezium.transforms.outbox.EventRouter",
        # aggregatetype names the destination topic as it is.
        "transforms.outbox.route.topic.replacement": "${routedByValue}",
        "transforms.outbox.table.fields.additional.placement": "id:header:event_id,type:header:event_type",
        "key.converter": "org.apache.kafka.connect.storage.StringConverter",
        # The bytea payload is written as it is: the service's serializer made the bytes (Confluent-framed Avro).
        "value.converter": "io.debezium.converters.BinaryDataConverter",
    }
    register(stack, "outbox", config)

    events = [
        (uuid.uuid4(), "order-1", "OrderPlaced", confluent_avro(7, "order-1", 1250)),
        (uuid.uuid4(), "order-2", "OrderPlaced", confluent_avro(7, "order-2", -3)),
        # Every byte value, a NUL and invalid UTF-8 among them: nothing on the way may decode or re-encode.
        (uuid.uuid4(), "order-1", "OrderPaid", bytes(range(256)) + b"\xff\xfe\0"),
    ]
    with psycopg.connect(stack.database_url) as connection:
        for event_id, order, kind, payload in events:
            # The way a service writes: the outbox row with its state change in one transaction, deleted at once so
            # that the table stays empty (the event router reads the insert from the WAL and ignores the delete).
            connection.execute(
                "INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload) VALUES (%s, %s, %s, %s, %s)",
                (event_id, "orders.events", order, kind, payload),
            )
            connection.execute("DELETE FROM outbox WHERE id = %s", (event_id,))
            connection.commit()

    messages = consume(stack, "orders.events", done=len(events))
    assert len(messages) == len(events)
    for message, (event_id, order, kind, payload) in zip(messages, events, strict=True):
        assert message.value() == payload
        assert message.key() == order.encode()
        headers = dict(message.headers() or [])
        assert headers["event_id"] == str(event_id).encode()
        assert headers["event_type"] == kind.encode()
    assert query(stack, "SELECT count(*) FROM outbox") == [(0,)]


# --- a crashed worker ---------------------------------------------------------------------------------------------


def test_a_worker_killed_with_sigkill_resumes_streaming_and_delivers_every_committed_change_once(stack: Stack) -> None:
    execute(stack, "CREATE TABLE ledger (id integer PRIMARY KEY)")
    # `required`: the worker refuses the connector unless it can write its changes and offsets in transactions.
    register(
        stack,
        "ledger",
        {**source_config(stack, "ledger", "ledger"), "snapshot.mode": "no_data", "exactly.once.support": "required"},
    )

    committed: list[int] = []
    stop = threading.Event()

    def write() -> None:
        """One row per transaction, all along: before, during and after the crash."""
        with psycopg.connect(stack.database_url, autocommit=True) as connection:
            while not stop.is_set():
                connection.execute("INSERT INTO ledger VALUES (%s)", (len(committed) + 1,))
                committed.append(len(committed) + 1)
                time.sleep(0.01)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        consume(stack, "ledger.public.ledger", until=lambda messages: len(messages) >= 50, settle_s=0)
        (worker,) = [p for p in kafka_stack.status(stack.state_dir) if p.name == "connect"]
        os.killpg(worker.pid, signal.SIGKILL)
        killed_at = len(committed)
        while worker.pid in processes_of(stack.state_dir):
            time.sleep(0.1)
        time.sleep(2)  # rows committed while no worker runs
        restarted = time.monotonic()
        kafka_stack.start_piece(stack.state_dir, "connect")
        await_running(stack, "ledger")
        streaming_again_s = time.monotonic() - restarted
        time.sleep(2)
    finally:
        stop.set()
        writer.join()
    assert len(committed) > killed_at + 50, "rows were committed while the worker was down and after it came back"

    expected = set(committed)
    messages = consume(stack, "ledger.public.ledger", until=Covers(expected), check=False)
    seen = [row_id(m) for m in messages]
    missing = sorted(expected - set(seen))
    assert not missing, (
        f"{len(missing)} of {len(expected)} committed rows missing, from {missing[:5]} to {missing[-5:]}\n"
        f"connector: {rest(stack, '/connectors/ledger/status')}\n"
        f"{logs(stack)}"
    )
    assert set(seen) == expected
    # Exactly once (KIP-618): the changes and their source offsets went to Kafka in one transaction, so the
    # transaction the kill cut short was aborted and its changes were read again from the slot, once.
    assert len(seen) == len(expected), f"{len(seen) - len(expected)} changes delivered twice after the SIGKILL"
    print(f"{len(expected)} committed rows, each delivered once across the SIGKILL")
    print(f"the task streamed again {streaming_again_s:.1f} s after the worker was started again")


def row_id(message: Message) -> int:
    return int(json.loads(message.value() or b"{}")["after"]["id"])


class Covers:
    """Whether the messages read so far hold every expected row, decoding each message once: rebuilding the set at
    every poll is quadratic, and on a loaded machine thousands of rows then outlast the deadline."""

    def __init__(self, expected: set[int]) -> None:
        self.expected = expected
        self.seen: set[int] = set()
        self.decoded = 0

    def __call__(self, messages: list[Message]) -> bool:
        self.seen.update(row_id(message) for message in messages[self.decoded :])
        self.decoded = len(messages)
        return self.expected <= self.seen


# --- down -------------------------------------------------------------------------------------------------------


def test_down_deletes_the_connectors_then_their_slots_and_publications_and_stops_every_process(stack: Stack) -> None:
    assert query(stack, "SELECT count(*) FROM pg_replication_slots") == [(3,)]
    assert {row[0] for row in query(stack, "SELECT pubname FROM pg_publication")} == {
        "cdc_publication",
        "outbox_publication",
        "ledger_publication",
    }
    down = subprocess.run([*stack_command(stack.state_dir), "down", "--keep-data"], capture_output=True, text=True)
    assert down.returncode == 0, down.stderr
    for name in ("cdc", "outbox", "ledger"):
        assert f"connector {name} deleted" in down.stderr
    assert processes_of(stack.state_dir) == []
    assert not kafka_stack.postgres_accepts(stack.postgres_port)
    # The kept database, opened in single-user mode: what the server would find on the next start.
    assert single_user_query(stack.state_dir, "SELECT count(*) FROM pg_replication_slots") == "0"
    assert single_user_query(stack.state_dir, "SELECT count(*) FROM pg_publication") == "0"


def single_user_query(state_dir: Path, sql: str) -> str:
    postgres = kafka_stack.Postgres(state_dir)
    postgres.install()
    result = subprocess.run(
        [
            *postgres.run_as,
            postgres.binary("postgres"),
            *("--single", "-D", str(postgres.data)),
            # As the stack runs it: a server that finds a logical slot refuses to start with a lower wal_level.
            *("-c", "wal_level=logical", "-c", "max_replication_slots=4", "-c", "max_wal_senders=4"),
            "postgres",
        ],
        input=f"{sql};\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    match = re.search(r'1: \S+ = "([^"]*)"', result.stdout)
    assert match, result.stdout + result.stderr
    return match.group(1)
