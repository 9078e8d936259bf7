"""What the shared answer tests (tests/spec, tests/render/test_combinations.py) need to know about the saga."""

from __future__ import annotations

from typing import Any


def section(topic: str) -> dict[str, Any] | None:
    return {
        "name": "fulfilment",
        "steps": [{"name": "reserve_stock", "compensation": "release_stock"}, {"name": "charge_card"}],
    }


NEEDS_A_CONSUMED_TOPIC = False
NO_TRACE_EXCEPT_IN: tuple[str, ...] = ()
REFUSALS = {"pattern_without_its_spec": "spec.saga: missing; the saga pattern needs it"}
CHART_PROCESSES_RUNS: dict[tuple[str, str], str] = {}
