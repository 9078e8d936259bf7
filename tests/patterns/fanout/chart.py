"""What tests/deploy/chart_processes.py needs to know about the fan-out to run its chart's processes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def readme_secrets(
    values: dict[str, Any], answers: dict[str, Any], stack: dict[str, str]
) -> dict[str, dict[str, bytes]]:
    return {}


def start_work(readme: str, post: Callable[[str, dict[str, Any]], Any]) -> None:
    """Nothing beyond the README's example POST: its channels read that topic."""


SERIES = {"fanout-": r"^messaging_kafka_consumer_assigned_partitions\{"}


def group_topic(group: str, spec: dict[str, Any], readable: list[str]) -> str | None:
    """Each channel reads the fan-out's topic in a group of its own."""
    channels = {f"{spec['consumer_group']}.{channel}" for channel in spec["fanout"]["channels"]}
    return str(spec["fanout"]["topic"]) if group in channels else None
