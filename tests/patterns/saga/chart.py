"""What tests/deploy/chart_processes.py needs to know about the saga to run its chart's processes."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any


def readme_secrets(
    values: dict[str, Any], answers: dict[str, Any], stack: dict[str, str]
) -> dict[str, dict[str, bytes]]:
    return {}


def start_work(readme: str, post: Callable[[str, dict[str, Any]], Any]) -> None:
    """A saga started through the route the README gives, for the orchestrator to run."""
    (route,) = re.findall(r"Start one with `POST (/\S+)`", readme)
    post(route, {"saga_id": f"chart-{uuid.uuid4().hex[:8]}", "input": {}})


SERIES = {"saga-orchestrator": r'^saga_transactions_total\{outcome="committed"\} [1-9]'}


def group_topic(group: str, spec: dict[str, Any], readable: list[str]) -> str | None:
    """The orchestrator reads its commands."""
    return next(t for t in readable if t.endswith(".commands")) if ".saga-" in group else None
