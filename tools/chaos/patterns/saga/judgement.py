"""How the saga chaos row judges one saga; stdlib only, so that the row's scenario (in a generated project's
interpreter) and our own tests import the same function."""

from __future__ import annotations

from typing import Any


def saga_verdict(
    state: dict[str, Any], done: set[str], runs: list[str], undo: dict[str, str | None], fail_at: str | None
) -> tuple[bool, bool, bool]:
    """Whether one saga's last state (as the state topic holds it) agrees with the handlers whose effects committed
    (`done`), whether it ended as planned (`fail_at` failing, or none), and whether a step of it timed out.

    Agreeing: the completed steps are a prefix of the plan, each with its effect; the compensations undo them in
    reverse, each with its effect. A step that timed out (its orchestrator down past its deadline) left no effect of
    its own, its records dropped, but is undone first: what its handler did before the deadline may have taken effect
    outside Kafka. Such a saga is compensated where the plan says otherwise; that is unplanned, not wrong."""
    completed, compensated = list(state["completed"]), list(state["compensated"])
    timed_out = list(state.get("timed_out", ()))
    expected_effects = set(completed) | {name for step in compensated if (name := undo[step])}
    ordered = completed == runs[: len(completed)]
    if state["status"] == "compensated":
        ordered = (
            ordered
            and timed_out in ([], runs[len(completed) : len(completed) + 1])
            and compensated == [name for name in reversed(completed + timed_out) if undo[name]]
        )
    elif state["status"] == "completed":
        ordered = ordered and completed == runs and not compensated and not timed_out
    wanted = "completed" if fail_at is None else "compensated"
    planned = state["status"] == wanted and (fail_at is None or completed == runs[: runs.index(fail_at)])
    return done == expected_effects and ordered, planned, bool(timed_out)
