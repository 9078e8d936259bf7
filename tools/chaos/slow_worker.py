"""`python -m <package> worker` with a slow handler, for the chaos rows about slow handlers; run with the generated
project's interpreter (cwd = project):

    .venv/bin/python .../tools/chaos/slow_worker.py <package>

The service's own handler runs after a sleep of CHAOS_HANDLER_MS (an I/O-bound call, as to a language model). With
CHAOS_SIDE_EFFECTS=postgres (at-least-once with PROCESSED_EVENTS_URL), each handled event also inserts a row into
`chaos_side_effects` inside the transaction that records its id, as a handler whose effect is a database write
makes it once: the rows, counted per event id, are the side effects the row checks. With CHAOS_ALSO_CONSUME (topic
names), the runner also consumes topics the service only publishes, as a downstream consumer would: their events'
side effect is that row alone. With CHAOS_JOURNAL (a directory), each handler call appends `start`, then `finish` or
`cancel` (abandoned by the runner), with the time, the event id and CHAOS_WORKER, to a file of the process's own: the
handlers' durable record the scaling row counts from, not the service's metrics. These knobs live here, in the chaos
tool, not in the service.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO


class Journal:
    """One line per handler call's start and end, flushed as written: what a SIGTERM'd process did survives it."""

    def __init__(self, folder: str, worker: str) -> None:
        self.worker = worker
        self.file: TextIO | None = None
        if folder:
            self.file = (Path(folder) / f"{worker}-{os.getpid()}.log").open("a", buffering=1)

    def write(self, what: str, event: Any, extra: str = "") -> None:
        if self.file is not None:
            self.file.write(f"{what} {time.time():.3f} {event.event_id} {self.worker}{extra}\n")


def slow(
    handler: Any,
    seconds: float,
    effects: bool,
    group: str,
    current_transaction: Any,
    foreign: frozenset[str],
    journal: Journal,
) -> Any:
    async def handle(topic: Any, event: Any) -> Any:
        journal.write("start", event)
        try:
            emitted = await calls(topic, event)
        except asyncio.CancelledError:
            journal.write("cancel", event)
            raise
        journal.write("finish", event)
        return emitted

    async def calls(topic: Any, event: Any) -> Any:
        await asyncio.sleep(seconds)
        # A topic the service publishes for others: the side effect is the whole handling, as in a consumer there.
        emitted = () if topic.name in foreign else await handler(topic, event)
        if effects:
            connection = current_transaction()
            async with connection.transaction():  # a savepoint: a failed attempt's write rolls back
                await connection.execute(
                    "INSERT INTO chaos_side_effects (consumer_group, event_id) VALUES ($1, $2)", group, event.event_id
                )
        return emitted

    return handle


def also_consume(package: str, names: frozenset[str]) -> None:
    """Subscribe the service's consumer runner to topics it publishes but does not consume (CHAOS_ALSO_CONSUME): the
    chaos rows play a downstream consumer with the service's own runner, delivery guarantee and processed-id store."""
    catalog: Any = importlib.import_module(f"{package}.events.catalog")
    consumer: Any = importlib.import_module(f"{package}.kafka.consumer")
    extra = tuple(dataclasses.replace(catalog.topic_named(name), consumed=True) for name in sorted(names))
    consumer.CONSUMED_TOPICS = (*catalog.CONSUMED_TOPICS, *extra)


def main() -> int:
    package = sys.argv[1]
    sys.path.insert(0, os.getcwd())
    app: Any = importlib.import_module(f"{package}.app")
    delivery = importlib.import_module(f"{package}.kafka.runners")
    cli = importlib.import_module(f"{package}.__main__")
    seconds = float(os.environ.get("CHAOS_HANDLER_MS", "0")) / 1000
    effects = os.environ.get("CHAOS_SIDE_EFFECTS") == "postgres"
    current_transaction = None
    if effects:
        current_transaction = importlib.import_module(f"{package}.processed_postgres").current_transaction
    group = os.environ["KAFKA_CONSUMER_GROUP"]
    create_runner = delivery.create_runner
    foreign = frozenset(name for name in os.environ.get("CHAOS_ALSO_CONSUME", "").split(",") if name)
    if foreign:
        also_consume(package, foreign)
    journal = Journal(os.environ.get("CHAOS_JOURNAL", ""), os.environ.get("CHAOS_WORKER", "worker"))

    def create_slow_runner(settings: Any, serde: Any, handler: Any, producer: Any, hooks: Any) -> Any:
        handle = slow(handler, seconds, effects, group, current_transaction, foreign, journal)
        return create_runner(settings, serde, handle, producer, hooks)

    app.create_runner = create_slow_runner
    return int(cli.main(["worker"]))


if __name__ == "__main__":
    sys.exit(main())
