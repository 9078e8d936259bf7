"""`make chaos` inside `make test`: each lane of the chaos table is a test of its own, so that pytest-xdist runs the
lanes beside the variant suites instead of after them. Each lane starts its own stack (tools/chaos/run.py), so a
row that restarts its broker or kills its Connect worker disturbs no suite."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SECURE_STACK_VARIABLES

REPO = Path(__file__).resolve().parents[1]
LANES = 2
"""As `make chaos` runs them: the rows on PostgreSQL and Kafka Connect in one lane, the rest in the other."""


@pytest.mark.timeout(2400)  # a lane is a dozen rows of a minute or more each
@pytest.mark.parametrize("lane", range(1, LANES + 1), ids=lambda lane: f"lane-{lane}")
def test_every_delivery_guarantee_holds_under_its_chaos_rows(lane: int) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", *SECURE_STACK_VARIABLES}}
    result = subprocess.run(
        [sys.executable, "-m", "tools.chaos.run", "--lanes", str(LANES), "--lane", str(lane)],
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
