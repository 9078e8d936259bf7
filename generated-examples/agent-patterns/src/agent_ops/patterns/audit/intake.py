"""Audit entries as the service writes them: one per event published and per record processed, to
agent.tasks.audit.intake, keyed by the entity's key. Sent with the producer in hand, so under exactly-once an entry
commits or aborts with the work it describes."""

import asyncio
import socket
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from ... import correlation
from ...kafka.port import Producer, Record
from . import names
from .chain import canonical

ACTOR = "agent-ops"
"""Who acts: the service, as the broker knows it (its KafkaUser)."""
_HOST = socket.gethostname()


def entry(action: str, outcome: str, topic: str, key: bytes | None, headers: dict[str, bytes]) -> dict[str, Any]:
    def header(name: str) -> str | None:
        value = headers.get(name)
        return value.decode("utf-8", "replace") if value is not None else None

    return {
        "action": action,
        "outcome": outcome,
        "topic": topic,
        "key": key.decode("utf-8", "replace") if key is not None else None,
        "event_id": header("event-id"),
        "event_type": header("event-type"),
        "actor": ACTOR,
        "host": _HOST,
        "correlation_id": header(correlation.CORRELATION_HEADER) or correlation.correlation_id(),
        "causation_id": header(correlation.CAUSATION_HEADER),
        "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
    }


async def _send(producer: Producer, key: bytes | None, value: dict[str, Any]) -> "asyncio.Future[Any]":
    delivery: asyncio.Future[Any] = await producer.send(
        names.INTAKE_TOPIC, canonical(value), key=key, headers=[("event-type", b"AuditEntry")]
    )
    return delivery


async def record_published(
    producer: Producer, topic: str, key: bytes, headers: Sequence[tuple[str, bytes]]
) -> "asyncio.Future[Any]":
    """Note an event sent to `topic` with `headers`; returns the entry's delivery future."""
    return await _send(producer, key, entry("published", "sent", topic, key, dict(headers)))


async def record_processed(
    producer: Producer, record: Record, outcome: str, by: str | None = None
) -> "asyncio.Future[Any]":
    """Note what became of a consumed record ("handled", "dead-lettered", "delivered"); `by` names a fan-out
    channel."""
    noted = entry("processed", outcome, record.topic, record.key, dict(record.headers))
    noted["source"] = f"{record.topic}[{record.partition}]@{record.offset}"
    if by is not None:
        noted["channel"] = by
    return await _send(producer, record.key, noted)
