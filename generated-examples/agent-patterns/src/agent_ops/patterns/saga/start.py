"""Starting a saga: a start command on the commands topic, keyed by the saga id. Starting an id that exists
already changes nothing, so a client may retry a start it is unsure of with the same id."""

import asyncio
import re
import uuid
from dataclasses import dataclass
from typing import Any

from ... import correlation
from ...kafka.port import Producer
from . import names
from .machine import Command

SAGA_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


@dataclass(frozen=True)
class Started:
    """The saga's id, and where its start command is stored."""

    saga_id: str
    topic: str
    partition: int
    offset: int


async def start_saga(
    producer: Producer, input: dict[str, Any], saga_id: str | None = None, timeout_seconds: float = 10.0
) -> Started:
    """Ask the orchestrator to run a saga on `input`, once the broker has the command."""
    saga_id = saga_id or str(uuid.uuid4())
    if not SAGA_ID.fullmatch(saga_id):
        raise ValueError("a saga id is 1 to 128 letters, digits, '.', '_', ':' or '-'")
    command = Command(saga_id, "start", input=input)
    headers = [
        ("event-type", b"SagaCommand"),
        ("event-id", command.command_id.encode()),
        *correlation.outgoing(command.command_id),
    ]
    delivery = await producer.send(names.COMMANDS_TOPIC, command.to_bytes(), key=saga_id.encode(), headers=headers)
    async with asyncio.timeout(timeout_seconds):
        stored = await delivery
    return Started(saga_id, stored.topic, stored.partition, stored.offset)
