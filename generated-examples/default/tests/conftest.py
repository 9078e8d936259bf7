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
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A real broker and schema registry: KAFKA_BOOTSTRAP_SERVERS and SCHEMA_REGISTRY_URL when both are set, else
    a stack started `--with registry` for this session, exported so that every Settings() of the tests sees it."""
    wanted = ("KAFKA_BOOTSTRAP_SERVERS", "SCHEMA_REGISTRY_URL")
    if all(os.environ.get(name) for name in wanted):
        yield {name: os.environ[name] for name in wanted}
        return
    state_dir = tmp_path_factory.mktemp("stack")
    stack = [sys.executable, str(STACK), "--state-dir", str(state_dir)]
    up = subprocess.run([*stack, "up", "--with", "registry"], stdout=subprocess.PIPE, text=True, check=True)
    started = dict(line.split("=", 1) for line in up.stdout.split())
    settings = {name: os.environ.get(name) or started[name] for name in wanted}
    environment = pytest.MonkeyPatch()
    for name, value in settings.items():
        environment.setenv(name, value)
    try:
        yield settings
    finally:
        environment.undo()
        subprocess.run([*stack, "down"], check=True)


@pytest.fixture(scope="session")
def kafka_bootstrap(local_stack: dict[str, str]) -> str:
    return local_stack["KAFKA_BOOTSTRAP_SERVERS"]


@pytest.fixture(scope="session")
def schema_registry_url(local_stack: dict[str, str]) -> str:
    return local_stack["SCHEMA_REGISTRY_URL"]


@pytest.fixture
def unique() -> str:
    """A suffix that keeps this test's consumer groups and keys apart from every other run on the same broker."""
    return uuid.uuid4().hex[:12]
