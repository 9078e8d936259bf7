"""`python -m task_audit audit seal|verify|show`: run the sealer, check the chain, read one entity's history."""

import argparse
import asyncio
import json
import logging
import signal
import sys
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from ...correlation import install_log_records
from ...kafka.connection import connection_options
from ...settings import Settings, get_settings
from ..topics import ensure_pattern_topics
from . import names
from .chain import Break, first_break
from .sealer import AuditSealer


async def partition_records(settings: Settings, partition: int) -> tuple[bool, list[ConsumerRecord[bytes, bytes]]]:
    """Whether the partition still starts at offset 0, and its committed records up to now, in order."""
    reader = AIOKafkaConsumer(
        **connection_options(settings), isolation_level="read_committed", enable_auto_commit=False
    )
    await reader.start()
    try:
        tp = TopicPartition(names.AUDIT_TOPIC, partition)
        reader.assign([tp])
        begin = (await reader.beginning_offsets([tp]))[tp]
        end = (await reader.end_offsets([tp]))[tp]
        await reader.seek_to_beginning(tp)
        records: list[ConsumerRecord[bytes, bytes]] = []
        while await reader.position(tp) < end:
            records.extend(r for r in (await reader.getmany(tp, timeout_ms=500)).get(tp, []) if r.offset < end)
        return begin == 0, records
    finally:
        await reader.stop()


async def partitions(settings: Settings) -> list[int]:
    """The audit log's partitions; none while the topic does not exist."""
    admin = AIOKafkaAdminClient(**connection_options(settings))
    await admin.start()
    try:
        (described,) = await admin.describe_topics([names.AUDIT_TOPIC])
        return sorted(partition["partition"] for partition in described["partitions"])
    finally:
        await admin.close()


async def verify(settings: Settings) -> dict[int, Break]:
    """The first break of each partition whose chain breaks; empty when the whole log holds."""
    key = settings.audit_chain_key.get_secret_value().encode()
    breaks: dict[int, Break] = {}
    for partition in await partitions(settings):
        from_genesis, records = await partition_records(settings, partition)
        found = first_break([(r.offset, r.value) for r in records], key, from_genesis)
        if found is not None:
            breaks[partition] = found
    return breaks


async def history(settings: Settings, key: str) -> list[dict[str, Any]]:
    """The sealed entries of one entity, oldest first."""
    entries: list[dict[str, Any]] = []
    for partition in await partitions(settings):
        _, records = await partition_records(settings, partition)
        for record in records:
            if record.key == key.encode():
                try:
                    entries.append(json.loads(record.value)["entry"] | {"offset": f"{partition}@{record.offset}"})
                except (ValueError, KeyError, TypeError):
                    continue  # `verify` reports it
    return sorted(entries, key=lambda e: str(e.get("at")))


async def seal_until_stopped(settings: Settings) -> int:
    if settings.kafka_create_topics:
        await ensure_pattern_topics(settings)
    sealer = AuditSealer(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await sealer.start()
    try:
        await stop.wait()
    finally:
        await sealer.stop()
    return 0


def main(argv: list[str], prog: str) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("seal", help="append the service's audit entries to the chained log until SIGTERM")
    commands.add_parser("verify", help="check every partition's chain; exit 1 naming the first broken record")
    show = commands.add_parser("show", help="print one entity's audit history, one JSON line per entry")
    show.add_argument("--key", required=True, help="the entity's key, e.g. a task_id")
    args = parser.parse_args(argv)
    settings = get_settings()
    install_log_records()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s [%(correlation_id)s] %(message)s"
    )
    if args.command == "seal":
        return asyncio.run(seal_until_stopped(settings))
    if args.command == "verify":
        breaks = asyncio.run(verify(settings))
        for partition, found in sorted(breaks.items()):
            print(f"{names.AUDIT_TOPIC}[{partition}]@{found.offset}: chain broken: {found.reason}", file=sys.stderr)
        if not breaks:
            print(f"{names.AUDIT_TOPIC}: every partition's chain holds")
        return 1 if breaks else 0
    for entry in asyncio.run(history(settings, args.key)):
        print(json.dumps(entry, sort_keys=True))
    return 0
