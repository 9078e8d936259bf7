"""`python -m agent_ops audit seal|verify|show`: run the sealer, check the chain, read one entity's history."""

import argparse
import asyncio
import json
import logging
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ...correlation import install_log_records
from ...kafka.admin import DeclaredTopic, ensure_topics, topic_partitions
from ...kafka.client import committed_reader
from ...kafka.port import Partition, Record
from ...kafka.reading import read_to_end
from ...observability import metrics
from ...settings import Settings, get_settings
from . import names
from .chain import Break, first_break
from .sealer import AuditSealer
from .settings import get_audit_settings
from .topics import TOPICS


@dataclass(frozen=True)
class Unsealed:
    """Entries of an intake partition the sealer has not committed past, the oldest older than the bound."""

    count: int
    offset: int
    age_seconds: float


async def read_partition(
    settings: Settings, topic: str, partition: int, start: int | None = None
) -> tuple[int, int, list[Record]]:
    """The partition's first and end offsets, and its committed records from `start` (its first) up to now."""
    reader = committed_reader(settings)
    await reader.start()
    try:
        tp = Partition(topic, partition)
        reader.assign([tp])
        begin = (await reader.beginning_offsets([tp]))[tp]
        end = (await reader.end_offsets([tp]))[tp]
        records: list[Record] = []
        async for batch in read_to_end(reader, tp, max(begin, start or begin), end):
            records.extend(batch)
        return begin, end, records
    finally:
        await reader.stop()


async def partition_records(settings: Settings, partition: int) -> tuple[bool, list[Record]]:
    """Whether the partition still starts at offset 0, and its committed records up to now, in order."""
    begin, _, records = await read_partition(settings, names.AUDIT_TOPIC, partition)
    return begin == 0, records


async def partitions(settings: Settings, topic: str | None = None) -> list[int]:
    """The partitions of `topic` (the audit log's by default); none while the topic does not exist."""
    return await topic_partitions(settings, topic or names.AUDIT_TOPIC)


async def verify(settings: Settings) -> dict[int, Break]:
    """The first break of each partition whose chain breaks; empty when the whole log holds."""
    key = get_audit_settings().chain_key.get_secret_value().encode()
    breaks: dict[int, Break] = {}
    for partition in await partitions(settings):
        begin, end, records = await read_partition(settings, names.AUDIT_TOPIC, partition)
        if not records and end > begin:
            # Offsets up to `end` hold records, yet none was read: nothing was checked, so nothing holds.
            breaks[partition] = Break(begin, f"nothing could be read, though the log holds offsets up to {end}")
            continue
        found = first_break([(r.offset, r.value) for r in records], key, begin == 0)
        if found is not None:
            breaks[partition] = found
    return breaks


async def unsealed(settings: Settings, older_than_seconds: float) -> dict[int, Unsealed]:
    """The intake partitions holding entries the sealer has not sealed for longer than `older_than_seconds`: a
    sealer that is down, or stuck; intake retention deletes such entries unsealed."""
    reader = committed_reader(settings, group_id=names.SEALER_GROUP)
    await reader.start()
    try:
        intake = await partitions(settings, names.INTAKE_TOPIC)
        committed = {p: await reader.committed(Partition(names.INTAKE_TOPIC, p)) for p in intake}
    finally:
        await reader.stop()
    now = time.time()
    found: dict[int, Unsealed] = {}
    for partition in intake:
        _, _, records = await read_partition(settings, names.INTAKE_TOPIC, partition, committed[partition])
        if records and (age := now - records[0].timestamp / 1000) > older_than_seconds:
            found[partition] = Unsealed(len(records), records[0].offset, age)
    return found


async def history(settings: Settings, key: str) -> list[dict[str, Any]]:
    """The sealed entries of one entity, oldest first."""
    entries: list[dict[str, Any]] = []
    for partition in await partitions(settings):
        _, records = await partition_records(settings, partition)
        for record in records:
            if record.key == key.encode():
                try:
                    entries.append(
                        json.loads(record.value or b"")["entry"] | {"offset": f"{partition}@{record.offset}"}
                    )
                except (ValueError, KeyError, TypeError):
                    continue  # `verify` reports it
    return sorted(entries, key=lambda e: str(e.get("at")))


async def seal_until_stopped(settings: Settings, topics: Sequence[DeclaredTopic] = TOPICS) -> int:
    if settings.kafka_create_topics:
        await ensure_topics(settings, topics)
    sealer = AuditSealer(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await sealer.start()
    try:
        # Served once the sealer has started: the pod's readiness probe asks this port.
        with metrics.served(settings.metrics_port):
            await stop.wait()
    finally:
        await sealer.stop()
    return 0


def main(argv: list[str], prog: str, topics: Sequence[DeclaredTopic] = TOPICS) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("seal", help="append the service's audit entries to the chained log until SIGTERM")
    check = commands.add_parser(
        "verify",
        help="check every partition's chain, and that no intake entry waits unsealed; exit 1 naming what fails",
    )
    check.add_argument(
        "--unsealed-after",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="fail when an intake entry has waited longer than this unsealed (default: %(default)s)",
    )
    show = commands.add_parser("show", help="print one entity's audit history, one JSON line per entry")
    show.add_argument("--key", required=True, help="the entity's key, e.g. a task_id")
    args = parser.parse_args(argv)
    settings = get_settings()
    install_log_records()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s [%(correlation_id)s] %(message)s"
    )
    if args.command == "seal":
        return asyncio.run(seal_until_stopped(settings, topics))
    if args.command == "verify":
        breaks = asyncio.run(verify(settings))
        for partition, found in sorted(breaks.items()):
            print(f"{names.AUDIT_TOPIC}[{partition}]@{found.offset}: chain broken: {found.reason}", file=sys.stderr)
        if not breaks:
            print(f"{names.AUDIT_TOPIC}: every partition's chain holds")
        waiting = asyncio.run(unsealed(settings, args.unsealed_after))
        for partition, left in sorted(waiting.items()):
            print(
                f"{names.INTAKE_TOPIC}[{partition}]@{left.offset}: {left.count} entries unsealed, the oldest for "
                f"{left.age_seconds:.0f} s: is the sealer running?",
                file=sys.stderr,
            )
        return 1 if breaks or waiting else 0
    for entry in asyncio.run(history(settings, args.key)):
        print(json.dumps(entry, sort_keys=True))
    return 0
