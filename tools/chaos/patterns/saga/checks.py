"""Tests of the saga row's judgement (judgement.py), collected as tests of tests/chaos/test_chaos.py."""

from __future__ import annotations

from typing import Any

import pytest

from .judgement import saga_verdict

RUNS = ["reserve", "run", "store", "notify"]
UNDO: dict[str, str | None] = {"reserve": "release", "run": "discard", "store": "delete", "notify": None}


def saga(status: str, completed: list[str], compensated: list[str] = [], timed_out: list[str] = []) -> dict[str, Any]:  # noqa: B006
    return {"status": status, "completed": completed, "compensated": compensated, "timed_out": timed_out}


@pytest.mark.parametrize(
    ("state", "done", "fail_at", "verdict"),
    [
        (saga("completed", RUNS), {*RUNS}, None, (True, True, False)),
        (
            saga("compensated", RUNS[:2], ["run", "reserve"]),
            {*RUNS[:2], "discard", "release"},
            "store",
            (True, True, False),
        ),
        # The orchestrator was down past store's deadline: store is undone first although it left no effect.
        (
            saga("compensated", RUNS[:2], ["store", "run", "reserve"], ["store"]),
            {*RUNS[:2], "delete", "discard", "release"},
            None,
            (True, False, True),
        ),
        (
            saga("compensated", RUNS[:2], ["store", "run", "reserve"], ["store"]),
            {*RUNS[:2], "delete", "discard", "release"},
            "store",
            (True, True, True),
        ),
        # Wrong: a compensation without its effect, one out of order, a completed step's effect missing.
        (saga("compensated", RUNS[:2], ["run", "reserve"]), {*RUNS[:2], "release"}, "store", (False, True, False)),
        (
            saga("compensated", RUNS[:2], ["reserve", "run"]),
            {*RUNS[:2], "discard", "release"},
            "store",
            (False, True, False),
        ),
        (saga("completed", RUNS), {*RUNS[:3]}, None, (False, True, False)),
        # A timed-out step that is not the one after the completed ones, or left undone.
        (
            saga("compensated", RUNS[:1], ["store", "reserve"], ["store"]),
            {"reserve", "delete", "release"},
            None,
            (False, False, True),
        ),
        (
            saga("compensated", RUNS[:2], ["run", "reserve"], ["store"]),
            {*RUNS[:2], "discard", "release"},
            None,
            (False, False, True),
        ),
    ],
)
def test_the_saga_rows_judgement_tells_a_timed_out_step_from_a_broken_saga(
    state: dict[str, Any], done: set[str], fail_at: str | None, verdict: tuple[bool, bool, bool]
) -> None:
    assert saga_verdict(state, done, RUNS, UNDO, fail_at) == verdict
