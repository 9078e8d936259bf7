"""Fixtures shared by the test suites."""

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.patterns import MODULES, prepare_stack, stack_services, stack_settings

# Each pattern's part of the tests: its fixtures.
pytest_plugins = MODULES

PROJECT = Path(__file__).resolve().parents[1]
STACK = PROJECT / "scripts" / "kafka_stack.py"
# With the settings of what the stack starts for the patterns.
STACK_SETTINGS = ("KAFKA_BOOTSTRAP_SERVERS", "SCHEMA_REGISTRY_URL", *stack_settings())


def running_stack() -> dict[str, str] | None:
    """The settings of the stack `make stack-up` started (.stack, or KAFKA_STACK_DIR), if all of it runs."""
    state_dir = os.environ.get("KAFKA_STACK_DIR") or str(PROJECT / ".stack")
    env = subprocess.run(
        [sys.executable, str(STACK), "--state-dir", state_dir, "env"], capture_output=True, text=True, check=False
    )
    settings = dict(line.split("=", 1) for line in env.stdout.split()) if env.returncode == 0 else {}
    return settings if all(settings.get(name) for name in STACK_SETTINGS) else None


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A real broker and schema registry: the stack in the environment when it names one (KAFKA_BOOTSTRAP_SERVERS,
    SCHEMA_REGISTRY_URL), else the stack of `make stack-up` when it runs,
    else a stack started for this session; exported so that every Settings() sees it."""
    state_dir = None
    if all(os.environ.get(name) for name in STACK_SETTINGS):
        settings = {name: os.environ[name] for name in STACK_SETTINGS}
    elif (running := running_stack()) is not None:
        settings = {name: running[name] for name in STACK_SETTINGS}
    else:
        # Not under pytest's basetemp where the stack starts services for the patterns: as root, a service it runs as
        # an unprivileged user must pass through the folders above its data, and each pytest session resets
        # /tmp/pytest-of-root to 0700.
        if stack_services():
            state_dir = Path(tempfile.mkdtemp(prefix="kafka-stack-"))
        else:
            state_dir = tmp_path_factory.mktemp("stack")
        up = subprocess.run(
            [
                sys.executable,
                str(STACK),
                "--state-dir",
                str(state_dir),
                "up",
                "--with",
                ",".join(("registry", *stack_services())),
            ],
            stdout=subprocess.PIPE,
            text=True,
            check=True,
        )
        started = dict(line.split("=", 1) for line in up.stdout.split())
        settings = {name: started[name] for name in STACK_SETTINGS}
    environment = pytest.MonkeyPatch()
    try:
        for name, value in settings.items():
            environment.setenv(name, value)
        prepare_stack()
        yield settings
    finally:
        environment.undo()
        if state_dir is not None:
            subprocess.run([sys.executable, str(STACK), "--state-dir", str(state_dir), "down"], check=True)
            shutil.rmtree(state_dir, ignore_errors=True)


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
