"""What the shared answer tests (tests/spec, tests/render/test_combinations.py) need to know about the outbox."""

from __future__ import annotations

from typing import Any

from tests.patterns.database.pipelines import CHART_PROCESSES_RUNS as CHART_PROCESSES_RUNS


def section(topic: str) -> dict[str, Any] | None:
    """Every topic's POST route writes to the outbox by default."""
    return {}


NEEDS_A_CONSUMED_TOPIC = False
# The stack launcher every project carries knows Connect's transforms; the service knows no outbox.
NO_TRACE_EXCEPT_IN = ("kafka_stack.py",)
REFUSALS = {"spec_without_its_pattern": "spec.outbox is set but the outbox pattern is not chosen"}
