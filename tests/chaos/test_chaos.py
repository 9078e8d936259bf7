"""`make chaos` inside `make test`: each lane of the chaos table is a test of its own, so that pytest-xdist runs the
lanes beside the variant suites instead of after them. Each lane starts its own stack (tools/chaos/run.py), so a
row that restarts its broker or kills its Connect worker disturbs no suite. Each pattern's tests of its rows'
helpers (tools/chaos/patterns/<name>/checks.py) are collected here too, as tests of this module."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SECURE_STACK_VARIABLES
from tools.chaos import patterns

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


def pattern_checks() -> dict[str, Any]:
    """The tests of every pattern's checks.py, by name; their asserts rewritten as this module's are."""
    pytest.register_assert_rewrite(*(f"{patterns.__name__}.{name}.checks" for name in patterns.names("checks")))
    checks = patterns.parts("checks").values()
    return {name: test for module in checks for name, test in vars(module).items() if name.startswith("test_")}


globals().update(pattern_checks())
