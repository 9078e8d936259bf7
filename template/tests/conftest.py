"""Fixtures shared by the test suites."""

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

STACK = Path(__file__).resolve().parents[1] / "scripts" / "kafka_stack.py"


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real broker: KAFKA_BOOTSTRAP_SERVERS when set, else one started from the bundled stack for this session."""
    if servers := os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield servers
        return
    state_dir = tmp_path_factory.mktemp("stack")
    stack = [sys.executable, str(STACK), "--state-dir", str(state_dir)]
    up = subprocess.run([*stack, "up"], stdout=subprocess.PIPE, text=True, check=True)
    settings = dict(line.split("=", 1) for line in up.stdout.split())
    try:
        yield settings["KAFKA_BOOTSTRAP_SERVERS"]
    finally:
        subprocess.run([*stack, "down"], check=True)


@pytest.fixture
def unique() -> str:
    """A suffix that keeps this test's consumer groups and keys apart from every other run on the same broker."""
    return uuid.uuid4().hex[:12]
