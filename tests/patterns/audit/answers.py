"""What the shared answer tests (tests/spec, tests/render/test_combinations.py) need to know about the audit log."""

from __future__ import annotations

from typing import Any


def section(topic: str) -> dict[str, Any] | None:
    """The audit log's part of a spec: none, its defaults fit any spec."""
    return None


NEEDS_A_CONSUMED_TOPIC = False
NO_TRACE_EXCEPT_IN: tuple[str, ...] = ()
REFUSALS: dict[str, str] = {}
# tests/deploy/test_chart_processes.py runs the sealer of the mTLS agent patterns.
CHART_PROCESSES_RUNS = {("security", "mtls"): "agent-patterns, mtls"}
