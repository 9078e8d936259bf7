"""The database's part of the shared tests (the outbox and change data capture share it): the stack's PostgreSQL and
its Kafka Connect worker with Debezium, the tables migrated as the deploy step does, and the `connectors` fixture."""

import asyncio
import subprocess
import sys

import pytest

from tests.patterns import seed_database
from tests.patterns.support import PatternSupport


def migrate() -> None:
    """The tables the service writes and Debezium captures, as the deploy step makes them."""
    subprocess.run([sys.executable, "-m", "order_pipelines", "migrate"], check=True)


SUPPORT = PatternSupport(
    stack_services=("postgres", "connect"),
    stack_settings=("DATABASE_URL", "KAFKA_CONNECT_URL"),
    prepare_stack=migrate,
)


@pytest.fixture(scope="session")
async def connectors(local_stack: dict[str, str]) -> None:
    """The Debezium connectors, registered (and their topics created) as the deploy step does, once the database holds
    the rows each pattern writes before they first start (`seed_database`)."""
    await seed_database(local_stack["DATABASE_URL"])
    registered = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "order_pipelines", "connect", "register", "--wait", "120"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert registered.returncode == 0, registered.stdout + registered.stderr
