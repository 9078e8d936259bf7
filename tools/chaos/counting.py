"""Counting with a client of the other kind than the service's: librdkafka (confluent-kafka) for an aiokafka service,
aiokafka for a librdkafka one, so a bug the service's client shares with the counter cannot hide. Run in a generated
project's interpreter (both clients are installed in every render), imported by name beside the scenario scripts.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any, NamedTuple

OTHER = {"aiokafka": "librdkafka", "confluent-kafka": "aiokafka"}
"""The client that counts a service of each answer."""


def lag(client: str, bootstrap: str, group: str, topic: str, start: dict[Any, int]) -> int:
    """What `group` has not committed of `topic` past the offsets `start` (partition number or TopicPartition ->
    offset), summed over its partitions, as the other client reads the committed offsets and the ends."""
    partitions = sorted(getattr(tp, "partition", tp) for tp in start)
    if OTHER[client] == "librdkafka":
        ends, committed = _with_librdkafka(bootstrap, group, topic, partitions)
    else:
        ends, committed = asyncio.run(_with_aiokafka(bootstrap, group, topic, partitions))
    return sum(max(ends[p] - max(committed.get(p, 0), 0), 0) for p in partitions)


def _with_librdkafka(bootstrap: str, group: str, topic: str, partitions: list[int]) -> tuple[dict[int, int], ...]:
    from confluent_kafka import Consumer, TopicPartition

    reader = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"chaos-count-{uuid.uuid4().hex}", "enable.auto.commit": False}
    )
    try:
        ends = {p: reader.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1] for p in partitions}
    finally:
        reader.close()
    # The group's offsets, asked without joining it (the group may be of either protocol).
    member = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        found = member.committed([TopicPartition(topic, p) for p in partitions], timeout=30)
    finally:
        member.close()
    return ends, {tp.partition: tp.offset for tp in found}


async def _with_aiokafka(bootstrap: str, group: str, topic: str, partitions: list[int]) -> tuple[dict[int, int], ...]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    tps = [TopicPartition(topic, p) for p in partitions]
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await reader.start()
    try:
        ends = {tp.partition: offset for tp, offset in (await reader.end_offsets(tps)).items()}
        committed = {tp.partition: (await reader.committed(tp)) or 0 for tp in tps}
    finally:
        await reader.stop()
    return ends, committed


class Seen(NamedTuple):
    """A record as the counting client read it."""

    partition: int
    offset: int
    key: bytes | None
    headers: dict[str, bytes]
    value: bytes | None


def read(client: str, bootstrap: str, topic: str, partitions: int, within: float = 120) -> list[Seen]:
    """Every committed record of `topic` up to its end (read_committed), as the other client than `client` reads
    it."""
    if OTHER[client] == "librdkafka":
        return _read_with_librdkafka(bootstrap, topic, partitions, within)
    return asyncio.run(_read_with_aiokafka(bootstrap, topic, partitions, within))


def _read_with_librdkafka(bootstrap: str, topic: str, partitions: int, within: float) -> list[Seen]:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

    reader = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"chaos-count-{uuid.uuid4().hex}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "fetch.max.bytes": 4 * 1024 * 1024,
        }
    )
    reader.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    seen: list[Seen] = []
    at_end: set[int] = set()
    deadline = time.monotonic() + within
    try:
        while len(at_end) < partitions:
            if time.monotonic() > deadline:
                raise TimeoutError(f"librdkafka did not reach the end of {topic}")
            for message in reader.consume(num_messages=5000, timeout=1.0):
                error = message.error()
                if error is not None and error.code() == KafkaError._PARTITION_EOF:
                    at_end.add(message.partition() or 0)
                elif error is not None:
                    raise RuntimeError(f"librdkafka: {error}")
                else:
                    at_end.discard(message.partition() or 0)
                    found: Any = message.headers() or []  # a list of pairs as librdkafka hands them over
                    pairs: list[tuple[str, Any]] = list(found)
                    key: Any = message.key()
                    headers = {name: value or b"" for name, value in pairs}
                    value: Any = message.value()
                    seen.append(Seen(message.partition() or 0, message.offset() or 0, key, headers, value))
    finally:
        reader.close()
    return seen


async def _read_with_aiokafka(bootstrap: str, topic: str, partitions: int, within: float) -> list[Seen]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    tps = [TopicPartition(topic, p) for p in range(partitions)]
    reader = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        isolation_level="read_committed",
        enable_auto_commit=False,
        max_poll_records=5000,
        fetch_max_bytes=4 * 1024 * 1024,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    await reader.start()
    seen: list[Seen] = []
    try:
        reader.assign(tps)
        await reader.seek_to_beginning(*tps)
        ends = await reader.end_offsets(tps)
        async with asyncio.timeout(within):
            while any([await reader.position(tp) < ends[tp] for tp in tps]):
                for batch in (await reader.getmany(timeout_ms=500)).values():
                    for r in batch:
                        headers = {name: value or b"" for name, value in r.headers}
                        seen.append(Seen(r.partition, r.offset, r.key, headers, r.value))
    finally:
        await reader.stop()
    return seen
