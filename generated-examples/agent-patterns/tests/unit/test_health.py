"""The probes without a broker: liveness follows the consumer's loop, readiness answers within its own bound."""

import asyncio
import time
from concurrent.futures import Future
from typing import Any

import httpx
from aiokafka import TopicPartition
from confluent_kafka import KafkaError, KafkaException

from agent_ops.kafka.confluent_client import a_broker_answers
from agent_ops.kafka.consumer import ConsumerRunner
from agent_ops.main import create_app
from agent_ops.settings import Settings
from tests.patterns import ready_fakes

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


class FakeAdmin:
    """librdkafka's admin client as readiness uses it: its metadata round trip answered, refused or never
    answered (a broker that accepts connections and says nothing)."""

    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.asked: list[float] = []

    def describe_cluster(self, request_timeout: float) -> "Future[Any]":
        self.asked.append(request_timeout)
        answered: Future[Any] = Future()
        if self.answer == "answers":
            answered.set_result(object())
        elif self.answer == "refuses":
            answered.set_exception(KafkaException(KafkaError(KafkaError._TRANSPORT, "connection refused")))
        return answered


class FakeProducer:
    def admin(self) -> FakeAdmin:
        return FakeAdmin("answers")


async def started(runner: ConsumerRunner) -> ConsumerRunner:
    await runner.start()
    await asyncio.sleep(0)  # let the loop make its first poll
    return runner


async def get(runner: ConsumerRunner | None, path: str) -> httpx.Response:
    app = create_app(SETTINGS)  # lifespan not entered: the state is set here instead
    app.state.settings = SETTINGS
    app.state.producer = FakeProducer()
    app.state.runner = runner
    app.state.checks = ready_fakes()  # the patterns' own, each answering at once
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


async def test_readiness_holds_when_a_broker_answers_a_round_trip_for_no_topic() -> None:
    """librdkafka sends the round trip to a broker it is connected to (not one restarting in a roll): an answer
    is ready at once, asked within the probe's own bound."""
    admin = FakeAdmin("answers")
    began = time.monotonic()
    assert await a_broker_answers(admin, timeout_seconds=5)
    assert time.monotonic() - began < 1
    assert admin.asked == [5]


async def test_readiness_fails_within_its_timeout_when_no_broker_answers() -> None:
    began = time.monotonic()
    assert not await a_broker_answers(FakeAdmin("hangs"), timeout_seconds=0.2)
    assert time.monotonic() - began < 1
    assert not await a_broker_answers(FakeAdmin("refuses"), timeout_seconds=0.2), "a refused round trip: not ready"


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
