"""What the shared answer tests (tests/spec, tests/render/test_combinations.py) need to know about the fan-out."""

from __future__ import annotations

from typing import Any


def section(topic: str) -> dict[str, Any] | None:
    """The fan-out's part of a spec whose first topic is `topic`."""
    return {"topic": topic, "channels": ["email", "sms"]}


# Its channels run on the runner of the spec's consumed topics: a service that consumes nothing cannot have them.
NEEDS_A_CONSUMED_TOPIC = True
# Files of a render without the fan-out that may still name it.
NO_TRACE_EXCEPT_IN: tuple[str, ...] = ()
# The refusals of the covering array's answers (tests/render/test_combinations.py builds the answers of each kind).
REFUSALS = {
    "pattern_without_its_spec": "spec.fanout: missing; the fanout pattern needs it",
    "spec_without_its_pattern": "spec.fanout is set but the fanout pattern is not chosen",
    "without_a_consumed_topic": "fanout's channels run on the consumer runner of the spec",
}
# Pairs of (guarantee or security, this pattern) that run on the real broker outside the variants' suites, and where.
CHART_PROCESSES_RUNS: dict[tuple[str, str], str] = {}
