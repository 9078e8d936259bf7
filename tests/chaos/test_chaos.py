"""`make chaos` inside `make test`: each lane of the chaos table is a test of its own, so that pytest-xdist runs the
lanes beside the variant suites instead of after them: two lanes per client answer (aiokafka's, then librdkafka's).
Each lane starts its own stack (tools/chaos/run.py), so a row that restarts its broker or kills its Connect worker
disturbs no suite. Each pattern's tests of its rows' helpers (tools/chaos/patterns/<name>/checks.py) are collected
here too, as tests of this module."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SECURE_STACK_VARIABLES
from tools.chaos import clients, patterns

REPO = Path(__file__).resolve().parents[2]
LANES = 2
"""Per client, as `make chaos` runs them: the rows on PostgreSQL and Kafka Connect in one lane, the rest in the
other. `--lane` counts the first client's lanes first."""

INPUTS = {"aiokafka": 2_500, "confluent-kafka": 1_250}
"""A quarter of `make chaos`'s inputs per row on the first client, an eighth on the second: every kill, fence,
restart and outage a row plans still happens (each is placed at a share of the stream, not at an offset), on a
shorter stream, which leaves CI time to the suites; the second client's kills cost more (a killed member's partitions
wait out the broker's session timeout under KIP-848). `make chaos` runs the full stream on both."""

LANE_OF = [(client, lane) for client in clients.CLIENTS for lane in range(1, LANES + 1)]


@pytest.mark.timeout(2400)  # a lane is a dozen rows of a minute or more each
@pytest.mark.parametrize(
    ("client", "lane"), LANE_OF, ids=[f"{clients.LABEL[client]}-lane-{lane}" for client, lane in LANE_OF]
)
def test_every_delivery_guarantee_holds_under_its_chaos_rows(client: str, lane: int) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", *SECURE_STACK_VARIABLES}}
    # Both clients' rows split into lanes as `make chaos` splits them: this client's lane `lane`.
    overall = LANE_OF.index((client, lane)) + 1
    command = ["--client", "both", "--lanes", str(LANES), "--lane", str(overall), "--inputs", str(INPUTS[client])]
    result = subprocess.run(
        [sys.executable, "-m", "tools.chaos.run", *command],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    tail = result.stdout[-8000:]  # the lane's table, and the rows' logs before it
    assert result.returncode == 0, f"chaos lane {overall} exited {result.returncode}:\n{tail}"
    assert re.search(r"^chaos: \d+ passed, 0 failed$", result.stdout, re.MULTILINE), tail


def pattern_checks() -> dict[str, Any]:
    """The tests of every pattern's checks.py, by name; their asserts rewritten as this module's are."""
    pytest.register_assert_rewrite(*(f"{patterns.__name__}.{name}.checks" for name in patterns.names("checks")))
    checks = patterns.parts("checks").values()
    return {name: test for module in checks for name, test in vars(module).items() if name.startswith("test_")}


globals().update(pattern_checks())
