"""A broker outage: readiness fails and publishing answers 503 within its timeout instead of hanging."""

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from order_pipelines.events.catalog import TOPICS
from tests.conftest import STACK
from tests.samples import ROUTES, sample_event

from .service import running_service, service_settings

pytestmark = pytest.mark.integration


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[list[str]]:
    """A broker of this test's own, since the test stops it; yields the stack command to control it."""
    stack = [sys.executable, str(STACK), "--state-dir", str(tmp_path / "stack")]
    subprocess.run([*stack, "up"], stdout=subprocess.DEVNULL, check=True)
    try:
        yield stack
    finally:
        subprocess.run([*stack, "down"], check=True)


async def test_outage_fails_readiness_and_publishing_answers_503(own_broker: list[str], unique: str) -> None:
    env = await asyncio.to_thread(subprocess.run, [*own_broker, "env"], capture_output=True, text=True, check=True)
    broker = dict(line.split("=", 1) for line in env.stdout.split())
    settings = service_settings(
        broker["KAFKA_BOOTSTRAP_SERVERS"],
        unique,
        publish_timeout_seconds=2.0,
        ready_timeout_seconds=1.0,
        shutdown_timeout_seconds=2.0,
    )
    topic = TOPICS[0]
    async with running_service(settings) as client:
        await asyncio.to_thread(subprocess.run, [*own_broker, "down"], check=True)

        started = time.monotonic()
        ready = await client.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["broker"] is False

        response = await client.post(ROUTES[topic.name], json=sample_event(topic).model_dump(mode="json"))
        assert response.status_code == 503
        assert "Retry-After" in response.headers
        assert time.monotonic() - started < 10, "an outage must not make requests hang"
