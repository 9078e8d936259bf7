"""`python -m agent_tasks dlq replay`: put dead letters back on their topic once their cause is fixed.

A dead letter on `<topic>.dlq` has the failed record's key and value, its headers, and `dlq.*` headers saying
where it came from and why it failed. The replay produces each one again on its original topic, same key and
value, its headers without the `dlq.*` ones and with `dlq.replayed.from` (`<dlq topic>/<partition>/<offset>`),
so the consumer handles it as it would the original. It reads the dead-letter topics in a consumer group of its
own (`<consumer group>.dlq-replay`) and commits a dead letter once its copy is acknowledged: running it again
replays nothing twice. It stops at the end the topics had when it started, so a record that fails again and is
dead-lettered again waits for the next replay instead of looping. `dlq discard` moves the same group past every
dead letter there is, on purpose, without replaying them.

The consumer skips an event id it has processed, and a dead-lettered event counts as processed (its outcome,
the dead letter, was stored). So the replay first forgets each replayed id in the processed-id store the
service uses (`PROCESSED_EVENTS_URL` or `PROCESSED_EVENTS_PATH`). The in-memory store is each worker's own: the
replay cannot reach it, so restart the workers before replaying (it says so).
"""

import argparse
import asyncio
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

import asyncpg

from ..events.catalog import CONSUMED_TOPICS
from ..settings import Settings, get_settings
from .client import committed_reader, partitions_of, plain_producer
from .port import Consumer, Partition, Producer, Record

DLQ_HEADER_PREFIX = "dlq."
REPLAYED_FROM = "dlq.replayed.from"


@dataclass(frozen=True)
class Replayed:
    """What one replay did: dead letters put back, per original topic."""

    per_topic: dict[str, int]
    note: str | None = None

    @property
    def total(self) -> int:
        return sum(self.per_topic.values())


def replay_group(settings: Settings) -> str:
    return f"{settings.kafka_consumer_group}.dlq-replay"


def original_topic(record: Record) -> str:
    named: bytes | None = dict(record.headers).get("dlq.original.topic")
    return named.decode() if named else record.topic.removesuffix(".dlq")


def replay_headers(record: Record) -> list[tuple[str, bytes]]:
    kept = [(name, value) for name, value in record.headers if not name.startswith(DLQ_HEADER_PREFIX)]
    return [*kept, (REPLAYED_FROM, f"{record.topic}/{record.partition}/{record.offset}".encode())]


def event_id_of(record: Record) -> UUID | None:
    """The id the service published the event under (its `event-id` header); none for a record that was never
    an event of this service (undecodable: it was never recorded as processed either)."""
    value: bytes | None = dict(record.headers).get("event-id")
    try:
        return UUID(value.decode()) if value else None
    except ValueError:
        return None


async def forget_processed(settings: Settings, event_ids: list[UUID]) -> str:
    """Remove `event_ids` from the shared processed-id store, so the consumer handles their replays; says where."""
    if not event_ids:
        return "no event ids to forget"
    if settings.processed_events_url:
        connection = await asyncpg.connect(settings.processed_events_url)
        try:
            await connection.execute(
                "DELETE FROM processed_events WHERE consumer_group = $1 AND event_id = ANY($2::uuid[])",
                settings.kafka_consumer_group,
                event_ids,
            )
        finally:
            await connection.close()
        return f"forgot {len(event_ids)} event ids in PostgreSQL"
    if settings.processed_events_path:
        database = sqlite3.connect(settings.processed_events_path, isolation_level=None)
        try:
            database.execute("CREATE TABLE IF NOT EXISTS processed (event_id TEXT PRIMARY KEY)")
            database.executemany("DELETE FROM processed WHERE event_id = ?", [(str(i),) for i in event_ids])
        finally:
            database.close()
        return f"forgot {len(event_ids)} event ids in {settings.processed_events_path}"
    return (
        "the processed-id store is in each worker's memory: restart the workers before replaying, or they skip "
        "these event ids as already processed"
    )


async def _behind(consumer: Consumer, ends: dict[Partition, int]) -> bool:
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return True
    return False


async def _read_dead_letters(consumer: Consumer, ends: dict[Partition, int], within: float) -> list[Record]:
    """Every dead letter from the group's committed offsets up to `ends`."""
    records: list[Record] = []
    async with asyncio.timeout(within):
        while await _behind(consumer, ends):
            batches = await consumer.getmany(timeout_ms=200)
            for tp, batch in batches.items():
                records += [record for record in batch if record.offset < ends[tp]]
    return records


def _consumer(settings: Settings) -> Consumer:
    # Committed records only: a dead letter written in an aborted transaction never happened.
    return committed_reader(settings, group_id=replay_group(settings), from_earliest=True)


async def _assign(consumer: Consumer, producer: Producer, topics: Sequence[str]) -> dict[Partition, int]:
    """Assign every partition of the topics' dead-letter topics; their ends now."""
    partitions = [
        Partition(f"{name}.dlq", partition)
        for name in topics
        for partition in sorted(await partitions_of(producer, f"{name}.dlq"))  # waits for the topic's metadata
    ]
    consumer.assign(partitions)
    ends: dict[Partition, int] = await consumer.end_offsets(partitions)
    return ends


async def replay(settings: Settings, topics: Sequence[str], within: float = 60.0) -> Replayed:
    """Replay the dead letters of `topics` (consumed topics' names) that no earlier replay put back."""
    consumer = _consumer(settings)
    producer = plain_producer(settings, idempotent=True)
    await consumer.start()
    await producer.start()
    try:
        ends = await _assign(consumer, producer, topics)
        records = await _read_dead_letters(consumer, ends, within)
        ids = [event_id for record in records if (event_id := event_id_of(record)) is not None]
        note: str | None = await forget_processed(settings, ids)
        per_topic = dict.fromkeys(topics, 0)
        for record in records:
            target = original_topic(record)
            await (await producer.send(target, record.value, key=record.key, headers=replay_headers(record)))
            # Committed one by one: a replay that stops halfway resumes after the last dead letter put back.
            await consumer.commit({Partition(record.topic, record.partition): record.offset + 1})
            per_topic[target] = per_topic.get(target, 0) + 1
        if ends:
            await consumer.commit(dict(ends))
        return Replayed(per_topic, note)
    finally:
        await producer.stop()
        await consumer.stop()


async def discard(settings: Settings, topics: Sequence[str]) -> int:
    """Move the replay past every dead letter of `topics` there is now, without replaying them; how many."""
    consumer = _consumer(settings)
    producer = plain_producer(settings)
    await consumer.start()
    await producer.start()
    try:
        ends = await _assign(consumer, producer, topics)
        skipped = 0
        for tp, end in ends.items():
            skipped += end - await consumer.position(tp)
        if ends:
            await consumer.commit(dict(ends))
        return skipped
    finally:
        await producer.stop()
        await consumer.stop()


def main(argv: list[str] | None = None, prog: str = "python -m agent_tasks dlq") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command", required=True)
    names = [topic.name for topic in CONSUMED_TOPICS]
    replay_command = commands.add_parser("replay", help="put dead letters back on their topic, each once")
    replay_command.add_argument(
        "--topic", action="append", choices=names, help="a consumed topic whose dead letters to replay (default: all)"
    )
    replay_command.add_argument("--timeout", type=float, default=60.0, help="seconds to read the dead letters")
    discard_command = commands.add_parser("discard", help="skip every dead letter there is now, on purpose")
    discard_command.add_argument("--topic", action="append", choices=names, help="a consumed topic (default: all)")
    args = parser.parse_args(argv)
    if args.command == "discard":
        skipped = asyncio.run(discard(get_settings(), args.topic or names))
        print(f"{skipped} dead letters skipped; a replay starts after them")
        return 0
    replayed = asyncio.run(replay(get_settings(), args.topic or names, args.timeout))
    if replayed.note:
        print(replayed.note)
    for name, count in replayed.per_topic.items():
        print(f"{name}: {count} dead letters replayed")
    return 0
