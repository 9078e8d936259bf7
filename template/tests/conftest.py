"""Fixtures shared by the test suites."""

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
STACK = PROJECT / "scripts" / "kafka_stack.py"
WANTED = ("KAFKA_BOOTSTRAP_SERVERS", "SCHEMA_REGISTRY_URL")


def running_stack() -> dict[str, str] | None:
    """The settings of the stack `make stack-up` started (.stack, or KAFKA_STACK_DIR), if all of it runs."""
    state_dir = os.environ.get("KAFKA_STACK_DIR") or str(PROJECT / ".stack")
    env = subprocess.run(
        [sys.executable, str(STACK), "--state-dir", state_dir, "env"], capture_output=True, text=True, check=False
    )
    settings = dict(line.split("=", 1) for line in env.stdout.split()) if env.returncode == 0 else {}
    return settings if all(settings.get(name) for name in WANTED) else None


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A real broker and schema registry: KAFKA_BOOTSTRAP_SERVERS and SCHEMA_REGISTRY_URL when both are set, else
    the stack of `make stack-up` when it runs, else a stack started `--with registry` for this session; exported
    so that every Settings() of the tests sees it."""
    wanted = WANTED
    if all(os.environ.get(name) for name in wanted):
        yield {name: os.environ[name] for name in wanted}
        return
    if (running := running_stack()) is not None:
        with pytest.MonkeyPatch.context() as environment:
            for name in wanted:
                environment.setenv(name, running[name])
            yield {name: running[name] for name in wanted}
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
