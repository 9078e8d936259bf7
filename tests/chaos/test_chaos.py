"""`make chaos` inside `make test`: each lane of the chaos table is a test of its own, so that pytest-xdist runs the
lanes beside the variant suites instead of after them. Each lane starts its own stack (tools/chaos/run.py), so a
row that restarts its broker or kills its Connect worker disturbs no suite."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SECURE_STACK_VARIABLES
from tools.chaos.saga_judgement import saga_verdict

REPO = Path(__file__).resolve().parents[2]
LANES = 2
"""As `make chaos` runs them: the rows on PostgreSQL and Kafka Connect in one lane, the rest in the other."""

INPUTS = 2_500
"""A quarter of `make chaos`'s inputs per row: every kill, fence, restart and outage a row plans still happens (each
is placed at a share of the stream, not at an offset), on a stream a quarter as long, which leaves CI time to the
suites. `make chaos` runs the full stream."""


@pytest.mark.timeout(2400)  # a lane is a dozen rows of a minute or more each
@pytest.mark.parametrize("lane", range(1, LANES + 1), ids=lambda lane: f"lane-{lane}")
def test_every_delivery_guarantee_holds_under_its_chaos_rows(lane: int) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", *SECURE_STACK_VARIABLES}}
    result = subprocess.run(
        [sys.executable, "-m", "tools.chaos.run", "--lanes", str(LANES), "--lane", str(lane), "--inputs", str(INPUTS)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    tail = result.stdout[-8000:]  # the lane's table, and the rows' logs before it
    assert result.returncode == 0, f"chaos lane {lane} exited {result.returncode}:\n{tail}"
    assert re.search(r"^chaos: \d+ passed, 0 failed$", result.stdout, re.MULTILINE), tail


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
