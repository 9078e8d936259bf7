"""What the shared answer tests (tests/spec, tests/render/test_combinations.py) need to know about change data
capture."""

from __future__ import annotations

from typing import Any

from tests.patterns.database.pipelines import CHART_PROCESSES_RUNS as CHART_PROCESSES_RUNS


def section(topic: str) -> dict[str, Any] | None:
    return {
        "table": "customers",
        "key": "customer_id",
        "columns": [{"name": "customer_id", "type": "long"}, {"name": "email", "type": "string"}],
    }


# It consumes its change topic through the runner of the spec's consumed topics.
NEEDS_A_CONSUMED_TOPIC = True
NO_TRACE_EXCEPT_IN: tuple[str, ...] = ()
REFUSALS = {
    "pattern_without_its_spec": "spec.cdc: missing; the cdc pattern needs it",
    "without_a_consumed_topic": "cdc consumes its change topic through the runner of the spec",
}
