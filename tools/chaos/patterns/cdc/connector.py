"""The `cdc` chaos row: a Debezium PostgreSQL source on a table of the stack's PostgreSQL, `changes` row changes
(inserts, updates, deletes, in transactions of one to five) written while the Connect worker is killed with SIGKILL
`kills` times, then every change counted on the topic by librdkafka.

    python -m tools.chaos.patterns.cdc.connector '{"state_dir": ..., "changes": 10000, "kills": 3, ...}'

Each kill falls due when its share of the changes is committed (not after some time), and only once the connector
streams again after the previous one: every planned kill lands on a worker at work, whatever the machine's speed.
The worker is started again in the background while the writer goes on, so changes are also committed while no
worker runs. A change is known on the topic by what it wrote: (insert, id), (update, id, version), (delete, id);
the rows there before the connector existed come as its snapshot's reads. Prints one JSON result line.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from confluent_kafka import Message
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from tools.chaos.connect import POSTGRES_CONNECTOR, Tail, Worker, log, read_topic

Change = tuple[Any, ...]
"""('r' | 'c', id), ('u', id, version) or ('d', id): one row change as the writer made it and the topic shows it."""


def source_config(worker: Worker, name: str, table: str, exactly_once: bool) -> dict[str, str]:
    """A Debezium source of one table: pgoutput, its own slot and a publication of that table only; snapshot first."""
    config = {
        "connector.class": POSTGRES_CONNECTOR,
        "plugin.name": "pgoutput",
        "database.hostname": "127.0.0.1",
        "database.port": str(worker.postgres_port),
        "database.user": "postgres",
        "database.dbname": "postgres",
        "topic.prefix": name,
        "table.include.list": f"public.{table}",
        "slot.name": f"{name}_slot",
        "publication.name": f"{name}_publication",
        "publication.autocreate.mode": "filtered",
        "snapshot.mode": "initial",
        "topic.creation.default.replication.factor": "1",
        "topic.creation.default.partitions": "3",
    }
    if exactly_once:
        config["exactly.once.support"] = "required"
    return config


def plan_changes(changes: int, seed: int) -> list[list[tuple[str, int]]]:
    """Transactions of one to five changes over a table that starts empty: about half inserts, a third updates, the
    rest deletes, each on a row that exists at that point."""
    rng = random.Random(seed)
    live: list[int] = []
    next_id = 1_000_000  # above the snapshot's ids
    transactions: list[list[tuple[str, int]]] = []
    planned = 0
    while planned < changes:
        transaction: list[tuple[str, int]] = []
        touched: set[int] = set()
        for _ in range(min(rng.randint(1, 5), changes - planned)):
            roll = rng.random()
            candidates = [i for i in live[-50:] if i not in touched]
            if roll < 0.5 or not candidates:
                live.append(next_id)
                transaction.append(("c", next_id))
                touched.add(next_id)
                next_id += 1
            elif roll < 0.85:
                row = rng.choice(candidates)
                transaction.append(("u", row))
                touched.add(row)
            else:
                row = rng.choice(candidates)
                live.remove(row)
                transaction.append(("d", row))
                touched.add(row)
            planned += 1
        transactions.append(transaction)
    return transactions


@dataclass(frozen=True)
class Table:
    """The captured table as the writer fills it: its key, a text column whose value names each row's version,
    and what the other columns that take no NULL get."""

    name: str
    key: str
    version: str
    filler: dict[str, object]

    def insert(self) -> str:
        columns = [self.key, self.version, *self.filler]
        values = ", ".join(["%s", "%s", *(["%s"] * len(self.filler))])
        return f"INSERT INTO {self.name} ({', '.join(columns)}) VALUES ({values})"

    def row(self, key: int, version: int) -> tuple[object, ...]:
        return (key, f"v{version}", *self.filler.values())

    def change_of(self, message: Message) -> Change | None:
        """The change a record carries; None for a delete's tombstone."""
        raw = message.value()
        if raw is None:
            return None
        value = json.loads(raw)
        op = value["op"]
        if op in ("r", "c"):
            return (op, value["after"][self.key])
        if op == "u":
            return (op, value["after"][self.key], int(value["after"][self.version].removeprefix("v")))
        return (op, value["before"][self.key])


FILLERS = {"bigint": 0, "integer": 0, "text": "", "boolean": False, "double precision": 0.0}


def variant_table(connection: psycopg.Connection[Any], table: str) -> Table:
    """The spec's captured table: its primary key, its first other text column as the version, fillers for the
    rest that take no NULL."""
    (key,) = connection.execute(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
        "WHERE i.indrelid = %s::regclass AND i.indisprimary",
        (table,),
    ).fetchone() or ("",)
    columns = connection.execute(
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns WHERE table_name = %s "
        "ORDER BY ordinal_position",
        (table,),
    ).fetchall()
    version = next(str(c) for c, kind, _ in columns if kind == "text" and c != key)
    filler = {
        str(c): FILLERS[str(kind)] for c, kind, nullable in columns if nullable == "NO" and c not in (key, version)
    }
    return Table(table, str(key), version, filler)


def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    if topic not in admin.list_topics(timeout=30).topics:
        for future in admin.create_topics([NewTopic(topic, partitions, 1)]).values():
            future.result()
        log(f"created {topic} ({partitions} partitions)")


def variant_connector(args: dict[str, Any], env: dict[str, str]) -> tuple[str, dict[str, str], str]:
    """Migrate the data-pipelines project's database with its own command; its CDC connector's name and config (as
    `connect show` prints them), and its table."""
    project, package = Path(args["project"]), args["package"]
    python = str(project / ".venv" / "bin" / "python")
    for command in (["migrate"], ["connect", "show"]):
        shown = subprocess.run(
            [python, "-m", package, *command], cwd=project, env=env, capture_output=True, text=True, check=True
        )
    connectors = json.loads(shown.stdout)
    name, config = next((n, c) for n, c in connectors.items() if "transforms.outbox.type" not in c)
    return name, config, config["table.include.list"].split(".", 1)[1]


def run(args: dict[str, Any]) -> dict[str, Any]:
    state_dir = Path(args["state_dir"])
    settings = args["settings"]
    n, kills, seeded = args["changes"], args["kills"], args.get("snapshot_rows", 500)
    worker = Worker(state_dir, settings)
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"} | settings
    variant = variant_connector(args, env) if args.get("project") else None
    if variant is not None and variant[0] in worker.rest("/connectors"):
        # An earlier round (--repeat) captured the variant's table: its rows and snapshot are taken, so this round
        # captures a fresh table of its own.
        log(f"{variant[0]} captured {variant[2]} in an earlier round; this round captures a table of its own")
        variant = None
    if variant is not None:
        # The data-pipelines variant's own migration, connector config and registration command.
        name, config, table_name = variant
        with psycopg.connect(worker.database_url) as connection:
            table = variant_table(connection, table_name)
        topic = config.get("transforms.topic.replacement") or f"{config['topic.prefix']}.public.{table_name}"
    else:
        name = f"chaos_cdc_{uuid.uuid4().hex[:8]}"
        config = source_config(worker, name, f"{name}_items", args.get("exactly_once", True))
        with psycopg.connect(worker.database_url) as connection:
            connection.execute(f"CREATE TABLE {name}_items (id bigint PRIMARY KEY, version text NOT NULL, name text)")
        table = Table(f"{name}_items", "id", "version", {})
        topic = f"{name}.public.{table.name}"
    with psycopg.connect(worker.database_url) as connection, connection.cursor() as cursor:
        cursor.executemany(table.insert(), [table.row(i, 0) for i in range(1, seeded + 1)])
    expected: list[Change] = [("r", i) for i in range(1, seeded + 1)]
    if variant is not None:
        project = Path(args["project"])
        # The broker creates no topic on its own, and the connector config asks Connect to create none: the change
        # topic must exist before the first change is sent (the service creates it when it consumes it).
        create_topic(settings["KAFKA_BOOTSTRAP_SERVERS"], topic, args.get("partitions", 3))
        subprocess.run(
            [str(project / ".venv" / "bin" / "python"), "-m", args["package"], "connect", "register", "--wait", "180"],
            cwd=project,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        worker.await_streaming(name, config["slot.name"])
    else:
        worker.register(name, config)
    change_of = table.change_of
    log(f"{name}: {seeded} rows of {table.name} snapshotted, streaming to {topic}; {n} changes, {kills} kills")

    bootstrap = settings["KAFKA_BOOTSTRAP_SERVERS"]
    # Streamed changes (not the snapshot's reads) committed to the topic: a worker is at work once the count grew
    # after it started. A worker killed before its first transaction committed would take the snapshot again.
    tail = Tail(bootstrap, topic, lambda record: (change_of(record) or ("r",))[0] != "r")
    transactions = plan_changes(n, args.get("seed", 11))
    rate = args.get("rate", 100)  # changes per second: the kills fall among writes, not after them
    held_from = n - n // 10  # the last tenth is written only once every planned kill was done
    versions: dict[int, int] = defaultdict(int)
    committed = 0
    restarting: threading.Thread | None = None
    mark = 0  # streamed changes on the topic when the worker last streamed again
    resumed_s: list[float] = []
    down_writes = 0  # changes committed while the worker was down or not yet streaming

    def restart() -> None:
        nonlocal mark
        began = time.monotonic()
        worker.start()
        worker.await_streaming(name, config["slot.name"])
        resumed_s.append(round(time.monotonic() - began, 1))
        mark = tail.counted

    def at_work() -> bool:
        return (restarting is None or not restarting.is_alive()) and tail.counted > mark

    def kill() -> threading.Thread:
        worker.kill()
        log(f"kill -9 #{worker.kills} of the Connect worker at {committed}/{n} changes committed")
        thread = threading.Thread(target=restart)
        thread.start()
        return thread

    t0 = time.monotonic()
    with psycopg.connect(worker.database_url) as connection:
        for transaction in transactions:
            while worker.kills < kills and committed >= held_from:
                waited = time.monotonic()
                while not at_work():
                    if time.monotonic() - waited > 300:
                        raise TimeoutError("the Connect worker did not stream again within 300 s")
                    time.sleep(0.1)
                restarting = kill()
            if worker.kills < kills and committed >= (worker.kills + 1) * held_from / (kills + 1) and at_work():
                restarting = kill()
            blind = not at_work()
            with connection.transaction():
                for op, row in transaction:
                    if op == "c":
                        connection.execute(table.insert(), table.row(row, 0))
                        expected.append(("c", row))
                    elif op == "u":
                        versions[row] += 1
                        connection.execute(
                            f"UPDATE {table.name} SET {table.version} = %s WHERE {table.key} = %s",
                            (f"v{versions[row]}", row),
                        )
                        expected.append(("u", row, versions[row]))
                    else:
                        connection.execute(f"DELETE FROM {table.name} WHERE {table.key} = %s", (row,))
                        expected.append(("d", row))
            committed += len(transaction)
            down_writes += len(transaction) if blind else 0
            time.sleep(max(0.0, t0 + committed / rate - time.monotonic()))
    if restarting is not None:
        restarting.join()
    tail.stop()
    writing_s = time.monotonic() - t0
    log(f"{n} changes committed in {writing_s:.1f} s ({down_writes} while the worker was down or starting)")

    wanted = set(expected)
    seen: Counter[Change] = Counter()
    tombstones = 0

    def complete(records: list[Message]) -> bool:
        nonlocal tombstones
        seen.clear()
        tombstones = 0
        for record in records:
            change = change_of(record)
            if change is None:
                tombstones += 1
            else:
                seen[change] += 1
        return wanted <= set(seen)

    records = read_topic(bootstrap, topic, complete)
    complete(records)
    delivered_s = time.monotonic() - t0
    # Each row's changes in the order they were committed, as the topic's first copies of them show it.
    written: dict[int, list[Change]] = defaultdict(list)
    for change in expected:
        written[change[1]].append(change)
    shown: dict[int, list[Change]] = defaultdict(list)
    firsts: set[Change] = set()
    for record in records:
        got = change_of(record)
        if got is not None and got not in firsts:
            firsts.add(got)
            shown[got[1]].append(got)
    reordered = sum(
        1 for row, changes in written.items() if shown.get(row, []) != changes and set(shown[row]) == set(changes)
    )
    return {
        "inputs": len(expected),
        "snapshot": seeded,
        "outputs": sum(seen.values()),
        "duplicates": sum(count - 1 for count in seen.values()),
        "lost": len(wanted - set(seen)),
        "unexpected": len(set(seen) - wanted),
        # A few of each, for a failure's report.
        "lost_sample": [list(c) for c in sorted(wanted - set(seen), key=str)[:5]],
        "unexpected_sample": [list(c) for c in sorted(set(seen) - wanted, key=str)[:5]],
        "reordered": reordered,
        "tombstones": tombstones,
        "kills": worker.kills,
        "down_writes": down_writes,
        "resumed_s": resumed_s,
        "exactly_once": config.get("exactly.once.support") == "required",
        "captured": f"{table.name} -> {topic} ({'the data-pipelines variant' if variant is not None else 'own'})",
        "seconds": round(delivered_s, 1),
    }


def main() -> None:
    print(json.dumps(run(json.loads(sys.argv[1]))), flush=True)


if __name__ == "__main__":
    main()
