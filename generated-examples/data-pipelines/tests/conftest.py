"""Fixtures shared by the test suites."""

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

PROJECT = Path(__file__).resolve().parents[1]
STACK = PROJECT / "scripts" / "kafka_stack.py"
# The outbox and change data capture need the stack's PostgreSQL and its Kafka Connect worker with Debezium.
STACK_SETTINGS = ("KAFKA_BOOTSTRAP_SERVERS", "SCHEMA_REGISTRY_URL", "DATABASE_URL", "KAFKA_CONNECT_URL")


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
        # Not under pytest's basetemp: as root, PostgreSQL runs as an unprivileged user that must pass through the
        # folders above its data, and each pytest session resets /tmp/pytest-of-root to 0700.
        state_dir = Path(tempfile.mkdtemp(prefix="kafka-stack-"))
        up = subprocess.run(
            [
                sys.executable,
                str(STACK),
                "--state-dir",
                str(state_dir),
                "up",
                "--with",
                "registry,postgres,connect",
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
        # The tables the service writes and Debezium captures, as the deploy step makes them.
        subprocess.run([sys.executable, "-m", "order_pipelines", "migrate"], check=True)
        yield settings
    finally:
        environment.undo()
        if state_dir is not None:
            subprocess.run([sys.executable, str(STACK), "--state-dir", str(state_dir), "down"], check=True)
            shutil.rmtree(state_dir, ignore_errors=True)


# Rows of customers there before its connector first starts: they reach the service as snapshot reads.
SNAPSHOT_ROWS = (
    {
        "customer_id": 900000001,
        "name": "snapshot-1",
        "email": "snapshot-1",
        "vip": True,
    },
    {
        "customer_id": 900000002,
        "name": "snapshot-2",
        "email": "snapshot-2",
        "vip": True,
    },
)


@pytest.fixture(scope="session")
async def connectors(local_stack: dict[str, str]) -> None:
    """The Debezium connectors, registered (and their topics created) as the deploy step does, once
    customers holds SNAPSHOT_ROWS."""
    connection = await asyncpg.connect(local_stack["DATABASE_URL"])
    try:
        columns = ", ".join(SNAPSHOT_ROWS[0])
        values = ", ".join(f"${n}" for n in range(1, len(SNAPSHOT_ROWS[0]) + 1))
        for row in SNAPSHOT_ROWS:
            await connection.execute(
                f"INSERT INTO customers ({columns}) VALUES ({values}) ON CONFLICT DO NOTHING", *row.values()
            )
    finally:
        await connection.close()
    registered = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "order_pipelines", "connect", "register", "--wait", "120"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert registered.returncode == 0, registered.stdout + registered.stderr


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
