"""The probes without a broker: liveness follows the consumer's loop, readiness answers within its own bound."""

import asyncio
import time
from types import SimpleNamespace
from typing import Any

import httpx
from aiokafka import TopicPartition
from aiokafka.errors import NodeNotReadyError
from aiokafka.protocol.metadata import MetadataRequest

from agent_ops.kafka.aiokafka_client import a_broker_answers
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


class FakeClient:
    """The producer's client as readiness uses it: the brokers it knows, each answering, refusing or hanging."""

    def __init__(
        self, answering: frozenset[int], refusing: frozenset[int] = frozenset(), hanging: frozenset[int] = frozenset()
    ) -> None:
        self.answering, self.refusing, self.hanging = answering, refusing, hanging
        self.asked: list[tuple[int, Any]] = []
        self.cluster = self

    def brokers(self) -> list[SimpleNamespace]:
        return [SimpleNamespace(nodeId=node) for node in sorted(self.answering | self.refusing | self.hanging)]

    async def send(self, node_id: int, request: Any) -> None:
        self.asked.append((node_id, request))
        if node_id in self.refusing:
            raise NodeNotReadyError(f"node {node_id} refused the connection")
        if node_id in self.hanging:
            await asyncio.Event().wait()


class FakeProducer:
    client = FakeClient(answering=frozenset({1}))


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


async def test_readiness_holds_while_one_broker_restarts_and_another_hangs() -> None:
    """A broker roll: one broker refuses connections, one hangs; the third answers, so the pod stays ready."""
    client = FakeClient(answering=frozenset({3}), refusing=frozenset({1}), hanging=frozenset({2}))
    began = time.monotonic()
    assert await a_broker_answers(client, timeout_seconds=5)
    assert time.monotonic() - began < 1, "the answer of the broker that answers, not the wait for the one that hangs"
    # Every broker asked, for no topic: the answer holds the brokers alone, however many topics the cluster has.
    assert sorted(node for node, _ in client.asked) == [1, 2, 3]
    assert all(isinstance(request, MetadataRequest) and request._topics == [] for _, request in client.asked)


async def test_readiness_fails_within_its_timeout_when_no_broker_answers() -> None:
    down = FakeClient(answering=frozenset(), refusing=frozenset({1}), hanging=frozenset({2}))
    began = time.monotonic()
    assert not await a_broker_answers(down, timeout_seconds=0.2)
    assert time.monotonic() - began < 1
    unknown = FakeClient(answering=frozenset())
    assert not await a_broker_answers(unknown, timeout_seconds=0.2), "no broker known: not ready"


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
