"""The saga's row of the chaos table (tools/chaos/run.py): sagas through the agent-patterns service's orchestrator,
killed -9 while they run (scenario.py, in the project's interpreter)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import Row

AFTER = "transaction failures"
DOC = {
    "saga": """\
  saga                     1,000 sagas of the agent-patterns service's saga (a fifth failing at each step in turn,
                           a fifth at none), its orchestrator killed -9: every saga completed or compensated, none
                           stuck, each step and compensation once (its effects counted by the client of the other
                           kind), compensations in reverse order of the completed steps (a step that timed out undone
                           first)
"""
}
PROJECTS = {"saga": "agent-patterns"}
"""The variant with every pattern of an agent's service."""
BORROWED: dict[str, str] = {}
SCRIPTS: dict[str, Path] = {}
MODULES: dict[str, str] = {}
WEIGHT = {"saga": 2.0}
ON_CONNECT: set[str] = set()
PLANNED_CRASHES: set[str] = set()


def rows(inputs: int, kills: int) -> list[Row]:
    # Sagas, not events: inputs/10 of them (1,000 by default), each 1 to 5 commands.
    return [("saga", "saga", {"kind": "saga", "kills": kills, "poison": 0, "inputs": max(inputs // 10, 100)})]


def verdict(name: str, r: dict[str, Any]) -> list[str]:
    broken = []
    if name == "saga":
        if r["stuck"] or r["completed"] + r["compensated"] != r["inputs"]:
            broken.append(f"{r['stuck']} saga(s) neither completed nor compensated")
        if r["doubled"]:
            broken.append(f"{r['doubled']} step(s) completed twice")
        if not r["unplanned"] and r["transitions"] != r["expected_transitions"]:
            broken.append(f"{r['transitions']} state transitions where the plan makes {r['expected_transitions']}")
        if r["inconsistent"]:
            broken.append(f"{r['inconsistent']} saga(s) whose steps, compensations and effects disagree")
    return broken


def notes(r: dict[str, Any]) -> list[str]:
    if "stuck" not in r:
        return []
    return [
        f"{r['completed']} completed, {r['compensated']} compensated, {r['stuck']} stuck, "
        f"{r['doubled']} doubled, {r['step_effects']} step effects (counted by the other client) of "
        f"{r['handler_calls']} handler calls, {r['unplanned']} unplanned ({r['timed_out']} with a step timed out)"
    ]
