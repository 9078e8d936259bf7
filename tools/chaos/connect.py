"""What the data-pipeline chaos rows share: the stack's Kafka Connect worker (its REST API, a SIGKILL and a restart
through the launcher), its PostgreSQL, and a topic read to its end by librdkafka (confluent-kafka), a client we did
not write."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import psycopg
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message
from confluent_kafka import TopicPartition as Partition

from tools.stack import kafka_stack

POSTGRES_CONNECTOR = "io.debezium.connector.postgresql.PostgresConnector"


def log(message: str) -> None:
    print(f"    [{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Worker:
    """The stack's Connect worker, seen from outside: its REST API, and its process to kill and start again."""

    def __init__(self, state_dir: Path, settings: dict[str, str]) -> None:
        self.state_dir = state_dir
        self.url = settings["KAFKA_CONNECT_URL"]
        self.database_url = settings["DATABASE_URL"]
        self.kills = 0

    @property
    def postgres_port(self) -> int:
        return int(self.database_url.rsplit(":", 1)[1].split("/")[0])

    def rest(self, path: str, body: object = None, method: str = "GET") -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.url}{path}", data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def register(self, name: str, config: dict[str, str], within: float = 180) -> None:
        self.rest(f"/connectors/{urllib.parse.quote(name)}/config", config, method="PUT")
        self.await_streaming(name, config["slot.name"], within)

    def await_streaming(self, name: str, slot: str, within: float = 180) -> float:
        """Wait until the connector's task runs and holds its replication slot; seconds waited."""
        started = time.monotonic()
        status: Any = None
        while time.monotonic() - started < within:
            try:
                status = self.rest(f"/connectors/{urllib.parse.quote(name)}/status")
            except (OSError, urllib.error.URLError, ValueError):
                status = None
            if isinstance(status, dict):
                tasks = status.get("tasks") or []
                failed = [task.get("trace", "") for task in tasks if task["state"] == "FAILED"]
                if failed:
                    raise RuntimeError(f"connector {name} failed: {failed[0][:2000]}")
                if status["connector"]["state"] == "RUNNING" and tasks and tasks[0]["state"] == "RUNNING":
                    with psycopg.connect(self.database_url, autocommit=True) as connection:
                        row = connection.execute(
                            "SELECT active FROM pg_replication_slots WHERE slot_name = %s", (slot,)
                        ).fetchone()
                    if row and row[0]:
                        return time.monotonic() - started
            time.sleep(0.3)
        raise TimeoutError(f"connector {name} not streaming after {within:.0f} s: {status}")

    def pid(self) -> int:
        (worker,) = [p for p in kafka_stack.status(self.state_dir) if p.name == "connect"]
        return worker.pid

    def kill(self) -> None:
        """SIGKILL the worker's process group (the JVM gets no chance to commit or close anything) and wait until it
        is gone."""
        worker = self.pid()
        os.killpg(worker, signal.SIGKILL)
        while any(p.running for p in kafka_stack.status(self.state_dir) if p.name == "connect"):
            time.sleep(0.1)
        self.kills += 1

    def start(self) -> None:
        """Start the worker again on its port with its config (the launcher waits until its REST API answers)."""
        kafka_stack.start_piece(self.state_dir, "connect")


def read_topic(bootstrap: str, topic: str, done: Any, quiet_s: float = 60, within: float = 600) -> list[Message]:
    """Every record of `topic` from its start as librdkafka reads it (read_committed), until `done(records)` holds
    and the topic's end is reached, or nothing new arrived for `quiet_s` (what is missing then stays missing)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"chaos-count-{uuid.uuid4().hex}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    metadata = consumer.list_topics(topic, timeout=30)
    partitions = list(metadata.topics[topic].partitions)
    consumer.assign([Partition(topic, p, OFFSET_BEGINNING) for p in partitions])
    records: list[Message] = []
    at_end: set[int] = set()
    started = last_new = time.monotonic()
    try:
        while time.monotonic() - started < within:
            if len(at_end) == len(partitions) and done(records):
                break
            if time.monotonic() - last_new > quiet_s:
                break
            for message in consumer.consume(num_messages=5000, timeout=1.0):
                error = message.error()
                if error is not None and error.code() == KafkaError._PARTITION_EOF:
                    at_end.add(message.partition() or 0)
                elif error is not None:
                    raise RuntimeError(f"librdkafka: {error}")
                else:
                    at_end.discard(message.partition() or 0)
                    records.append(message)
                    last_new = time.monotonic()
    finally:
        consumer.close()
    return records


class Tail:
    """Follows a topic from its start in a thread of its own as librdkafka reads it (read_committed): how many
    records, and how many of them `counts(record)` accepts, have been committed so far. It subscribes, so the topic
    may appear after it started."""

    def __init__(self, bootstrap: str, topic: str, counts: Any) -> None:
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"chaos-tail-{uuid.uuid4().hex}",
                "isolation.level": "read_committed",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "topic.metadata.refresh.interval.ms": 1000,
            }
        )
        self.consumer.subscribe([topic])
        self.counts = counts
        self.records = 0
        self.counted = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.follow, daemon=True)
        self.thread.start()

    def follow(self) -> None:
        while not self.stopping.is_set():
            for message in self.consumer.consume(num_messages=1000, timeout=0.5):
                if message.error() is None:
                    self.records += 1
                    self.counted += 1 if self.counts(message) else 0

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join()
        self.consumer.close()
