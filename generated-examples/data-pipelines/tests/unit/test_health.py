"""The probes without a broker: liveness follows the consumer's loop, readiness answers within its own bound."""

import asyncio
import time
from typing import Any

import httpx
from aiokafka import TopicPartition

from order_pipelines.app import create_app
from order_pipelines.kafka.consumer import ConsumerRunner
from order_pipelines.settings import Settings

SETTINGS = Settings(ready_timeout_seconds=0.05)


class FakeConsumer:
    """Enough of AIOKafkaConsumer for the runner's loop: each poll waits for ever, or fails at once."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail

    def subscribe(self, topics: list[str], listener: Any) -> None:
        pass

    async def start(self) -> None:
        pass

    async def getmany(self, timeout_ms: int) -> dict[Any, Any]:
        if self.fail:
            raise RuntimeError("an error the runner cannot handle")
        await asyncio.Event().wait()
        return {}


class SlowLag(ConsumerRunner):
    """Joined, but its lag lookups never answer (a broker that accepts connections and says nothing)."""

    async def lag(self, timeout_seconds: float) -> dict[str, int]:
        await asyncio.Event().wait()
        return {}


class PausedSinceItsLastFetch:
    """An assigned partition paused (its queue full) since its last fetch: the highwater that fetch saw is stale,
    and the broker has far more records by now."""

    partition = TopicPartition("orders", 0)

    def assignment(self) -> set[TopicPartition]:
        return {self.partition}

    def paused(self) -> set[TopicPartition]:
        return {self.partition}

    def highwater(self, tp: TopicPartition) -> int:
        return 10

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return dict.fromkeys(partitions, 50)

    async def position(self, tp: TopicPartition) -> int:
        return 10


class Metadata:
    async def fetch_all_metadata(self) -> None:
        pass


class FakeProducer:
    client = Metadata()


class FakeDatabase:
    """The outbox's database, answering at once."""

    async def reachable(self, timeout_seconds: float) -> bool:
        return True


async def started(runner: ConsumerRunner) -> ConsumerRunner:
    await runner.start()
    await asyncio.sleep(0)  # let the loop make its first poll
    return runner


async def get(runner: ConsumerRunner | None, path: str) -> httpx.Response:
    app = create_app(SETTINGS)  # lifespan not entered: the state is set here instead
    app.state.settings = SETTINGS
    app.state.producer = FakeProducer()
    app.state.runner = runner
    app.state.database = FakeDatabase()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        return await client.get(path)


async def test_liveness_holds_while_the_consumer_runs() -> None:
    runner = await started(ConsumerRunner(FakeConsumer(), None, None, SETTINGS))  # type: ignore[arg-type]
    try:
        assert (await get(runner, "/health/live")).status_code == 200
    finally:
        runner._stopping.set()
        runner._task.cancel()  # type: ignore[union-attr]
        await asyncio.gather(runner._task, return_exceptions=True)  # type: ignore[arg-type]


async def test_liveness_fails_once_the_consumer_died() -> None:
    runner = await started(ConsumerRunner(FakeConsumer(fail=True), None, None, SETTINGS))  # type: ignore[arg-type]
    await runner.finished()
    assert not runner.running
    response = await get(runner, "/health/live")
    assert response.status_code == 503
    assert response.json() == {"status": "consumer stopped"}
    await asyncio.gather(runner._task, return_exceptions=True)  # type: ignore[arg-type]


async def test_liveness_without_a_consumer_is_fine() -> None:
    assert (await get(None, "/health/live")).status_code == 200


async def test_readiness_answers_within_twice_its_timeout() -> None:
    runner = await started(SlowLag(FakeConsumer(), None, None, SETTINGS))  # type: ignore[arg-type]
    runner.joined.set()
    try:
        began = time.monotonic()
        response = await get(runner, "/health/ready")
        elapsed = time.monotonic() - began
    finally:
        runner._task.cancel()  # type: ignore[union-attr]
        await asyncio.gather(runner._task, return_exceptions=True)  # type: ignore[arg-type]
    assert response.status_code == 503
    assert response.json()["ready"] is False
    # The Helm chart's readiness timeoutSeconds is 2 x READY_TIMEOUT_SECONDS + 1: the probe must get this answer.
    assert elapsed < 2 * SETTINGS.ready_timeout_seconds + 0.5


async def test_a_paused_partitions_lag_is_its_end_now_not_at_its_last_fetch() -> None:
    runner = ConsumerRunner(PausedSinceItsLastFetch(), None, None, SETTINGS)  # type: ignore[arg-type]
    assert await runner.lag(1.0) == {"orders[0]": 40}
