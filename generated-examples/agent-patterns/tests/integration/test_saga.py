"""The task_run saga against the real broker: every step once in order; a failure at each step compensates
exactly the steps before it, in reverse; a step past its timeout fails the saga; an orchestrator killed with SIGKILL
mid-saga resumes from the state topic and runs no step twice to completion (counted by librdkafka). Records that are
not commands are dead-lettered; a step's time counts from when an orchestrator takes its command, once; a saga
finished long ago is tombstoned, and one whose command is older than the commands' retention gets it again; a send
that fails aborts the transaction; the group has no lag at rest."""

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import NewTopic
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource  # type: ignore[attr-defined]  # no __all__

from agent_ops.patterns.saga import cli, names
from agent_ops.patterns.saga.definition import STEPS
from agent_ops.patterns.saga.machine import TERMINAL, Command, SagaState, StepCall
from agent_ops.patterns.saga.orchestrator import SagaOrchestrator, read_states
from agent_ops.patterns.saga.settings import SagaSettings, get_saga_settings
from agent_ops.patterns.saga.start import start_saga
from agent_ops.settings import Settings

from .hostile_records import dead_letters, lag, librdkafka, write_hostile
from .kafka_io import create_topics
from .saga_steps import RecordingSteps
from .service import eventually, running_service, service_settings

pytestmark = pytest.mark.integration

PARTITIONS = 3
ROUTE = "/sagas/task-run"
RUNS = [step.name for step in STEPS]
COMPENSATIONS = {step.name: step.compensation for step in STEPS}
INPUT_KEY = "task_id"


@pytest.fixture
async def saga_topics(kafka_bootstrap: str, unique: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Commands, state (compacted, as the service declares it) and effects topics and a group of this test's own."""
    topics = {
        "commands": f"test.saga.{unique}.commands",
        "state": f"test.saga.{unique}.state",
        "effects": f"test.saga.{unique}.effects",
        "dead_letters": f"test.saga.{unique}.commands.dlq",
    }
    await create_topics(
        kafka_bootstrap,
        NewTopic(topics["commands"], PARTITIONS, 1),
        NewTopic(topics["state"], PARTITIONS, 1, topic_configs={"cleanup.policy": "compact"}),
        NewTopic(topics["effects"], PARTITIONS, 1),
        NewTopic(topics["dead_letters"], PARTITIONS, 1),
    )
    monkeypatch.setattr(names, "COMMANDS_TOPIC", topics["commands"])
    monkeypatch.setattr(names, "STATE_TOPIC", topics["state"])
    monkeypatch.setattr(names, "GROUP", f"test-{unique}-saga")
    monkeypatch.setattr(names, "DEAD_LETTER_TOPIC", topics["dead_letters"])
    return topics


@pytest.fixture(autouse=True)
def saga_environment(unique: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The saga's settings of this test, as SAGA_* variables: transactional ids of its own, short backoffs."""
    monkeypatch.setenv("SAGA_TRANSACTIONAL_ID_PREFIX", f"test-{unique}-saga-")
    monkeypatch.setenv("SAGA_RETRY_BACKOFF_SECONDS", "0.01")
    get_saga_settings.cache_clear()
    yield
    get_saga_settings.cache_clear()


def saga_settings(kafka_bootstrap: str, unique: str, **overrides: Any) -> Settings:
    return service_settings(kafka_bootstrap, unique, **overrides)


def saga_config(**overrides: Any) -> SagaSettings:
    """The saga's settings of this test (saga_environment's) with `overrides`."""
    return get_saga_settings().model_copy(update=overrides)


async def states(settings: Settings) -> dict[str, SagaState]:
    found: dict[str, SagaState] = {}
    for partition in range(PARTITIONS):
        found |= await read_states(settings, partition)
    return found


async def settled(settings: Settings, ids: list[str], within: float = 120) -> dict[str, SagaState]:
    """The sagas' states once every one of them waits for nothing."""
    found: dict[str, SagaState] = {}

    async def all_settled() -> bool:
        found.clear()
        found.update(await states(settings))
        return all(saga_id in found and found[saga_id].status in TERMINAL for saga_id in ids)

    await eventually(all_settled, within=within, interval=0.5)
    return found


@pytest.fixture
async def producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    started = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", enable_idempotence=True)
    await started.start()
    yield started
    await started.stop()


def read_with_librdkafka(
    bootstrap: str, topic: str, partitions: int = PARTITIONS
) -> list[tuple[bytes | None, bytes | None]]:
    """Every committed (key, value) of `topic`, read by librdkafka: a client we did not write."""
    consumer = Consumer(
        librdkafka(bootstrap)
        | {
            "group.id": f"test-count-{uuid.uuid4().hex}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    records: list[tuple[bytes | None, bytes | None]] = []
    at_end: set[int] = set()
    try:
        while len(at_end) < partitions:
            for message in consumer.consume(num_messages=1000, timeout=1.0):
                error = message.error()
                if error is not None and error.code() == KafkaError._PARTITION_EOF:
                    at_end.add(message.partition() or 0)
                elif error is not None:
                    raise RuntimeError(str(error))
                else:
                    at_end.discard(message.partition() or 0)
                    records.append((message.key(), message.value()))
    finally:
        consumer.close()
    return records


def effects(bootstrap: str, topic: str) -> Counter[tuple[str, str]]:
    """How many times each (saga id, handler) completed, as the committed effects on `topic` say."""
    counted: Counter[tuple[str, str]] = Counter()
    for _, value in read_with_librdkafka(bootstrap, topic):
        assert value is not None
        effect = json.loads(value)
        counted[effect["saga_id"], effect["handler"]] += 1
    return counted


async def test_a_saga_started_over_http_runs_every_step_once_in_order(
    kafka_bootstrap: str, unique: str, saga_topics: dict[str, str]
) -> None:
    settings = saga_settings(kafka_bootstrap, unique)
    async with running_service(settings) as client:
        response = await client.post(ROUTE, json={"saga_id": f"saga-{unique}", "input": {INPUT_KEY: unique}})
        assert response.status_code == 202, response.text
        assert response.json()["saga_id"] == f"saga-{unique}"
        assert response.json()["topic"] == names.COMMANDS_TOPIC
        again = await client.post(ROUTE, json={"saga_id": f"saga-{unique}", "input": {}})
        assert again.status_code == 202, "a retried start is accepted and starts nothing new"
        refused = await client.post(ROUTE, json={"saga_id": "no spaces"})
        assert refused.status_code == 422
        state = (await settled(settings, [f"saga-{unique}"]))[f"saga-{unique}"]
    assert state.status == "completed"
    assert state.completed == tuple(RUNS)
    assert state.compensated == ()
    assert state.input == {INPUT_KEY: unique}, "the first start's input, not the retry's"
    assert set(state.results) == set(RUNS)

    # The state topic, read by librdkafka: keyed by saga id, one state per committed transition, and between two
    # the next command taken (its deadline set) before its handler ran.
    records = read_with_librdkafka(kafka_bootstrap, saga_topics["state"])
    ours = [json.loads(value) for key, value in records if key == f"saga-{unique}".encode() and value is not None]
    moved = [record for record in ours if record["pending"] is None or record["pending"]["deadline"] is None]
    taken = [record for record in ours if record not in moved]
    assert [record["status"] for record in moved] == ["running"] * len(RUNS) + ["completed"]
    assert [len(record["completed"]) for record in moved] == list(range(len(RUNS) + 1))
    assert ours == [*(state for pair in zip(moved, taken, strict=False) for state in pair), moved[-1]]
    assert [record["pending"]["command_id"] for record in taken] == [r["pending"]["command_id"] for r in moved[:-1]]
    # The service's own state topic, as its start-up created it, is compacted: the latest state per saga stays.
    admin = AdminClient(librdkafka(kafka_bootstrap))
    resource = ConfigResource(ConfigResource.Type.TOPIC, "saga.task-run.state")
    (described,) = admin.describe_configs([resource]).values()
    assert described.result()["cleanup.policy"].value == "compact"
    shown = await cli.saga_state(settings, f"saga-{unique}")
    assert shown == state


async def test_a_failure_at_each_step_compensates_exactly_the_earlier_steps_in_reverse(
    kafka_bootstrap: str, unique: str, saga_topics: dict[str, str], producer: AIOKafkaProducer
) -> None:
    settings = saga_settings(kafka_bootstrap, unique)
    steps = RecordingSteps(saga_topics["effects"])
    orchestrator = SagaOrchestrator(settings, steps)
    await orchestrator.start()
    try:
        failing = {f"fail-{index}-{unique}": step for index, step in enumerate(RUNS)}
        for saga_id, step in failing.items():
            await start_saga(producer, {"fail_at": step}, saga_id)
        found = await settled(settings, list(failing))
    finally:
        await orchestrator.stop()
    done = effects(kafka_bootstrap, saga_topics["effects"])
    for saga_id, step in failing.items():
        index = RUNS.index(step)
        earlier = RUNS[:index]
        undo = [COMPENSATIONS[name] for name in reversed(earlier) if COMPENSATIONS[name]]
        assert found[saga_id].status == "compensated", found[saga_id]
        assert found[saga_id].completed == tuple(earlier)
        assert step in str(found[saga_id].error)
        calls = [handler for called, handler in steps.calls if called == saga_id]
        assert calls == [*RUNS[: index + 1], *undo], "the steps up to the failed one, then their undoing in reverse"
        assert {handler for (called, handler) in done if called == saga_id} == {*earlier, *undo}
    assert set(done.values()) == {1}, "each step and compensation completed once"


async def test_a_step_past_its_timeout_fails_the_saga(
    kafka_bootstrap: str, unique: str, saga_topics: dict[str, str], producer: AIOKafkaProducer
) -> None:
    settings = saga_settings(kafka_bootstrap, unique)
    slow = RUNS[-1]
    plan = tuple(replace(step, timeout_seconds=1) if step.name == slow else step for step in STEPS)
    steps = RecordingSteps()
    orchestrator = SagaOrchestrator(settings, steps, plan)
    await orchestrator.start()
    try:
        await start_saga(producer, {"sleep": {slow: 30}}, f"slow-{unique}")
        state = (await settled(settings, [f"slow-{unique}"], within=60))[f"slow-{unique}"]
    finally:
        await orchestrator.stop()
    assert state.status == "compensated"
    assert state.error == f"{slow}: {slow} timed out after 1 s"
    assert state.completed == tuple(RUNS[:-1])
    assert state.compensated == tuple(name for name in reversed(RUNS[:-1]) if COMPENSATIONS[name])


async def test_an_orchestrator_killed_mid_saga_resumes_and_runs_no_step_twice_to_completion(
    kafka_bootstrap: str, unique: str, saga_topics: dict[str, str], producer: AIOKafkaProducer, tmp_path: Path
) -> None:
    settings = saga_settings(kafka_bootstrap, unique)
    gate, log = tmp_path / "gate", tmp_path / "calls.log"
    held = RUNS[min(1, len(RUNS) - 1)]  # every saga waits here until the gate opens: the kill lands mid-saga
    env = os.environ | {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KAFKA_CREATE_TOPICS": "false",
        "SAGA_TRANSACTIONAL_ID_PREFIX": get_saga_settings().transactional_id_prefix,
        "SAGA_TEST_COMMANDS": saga_topics["commands"],
        "SAGA_TEST_STATE": saga_topics["state"],
        "SAGA_TEST_GROUP": names.GROUP,
        "SAGA_TEST_EFFECTS": saga_topics["effects"],
        "SAGA_TEST_LOG": str(log),
        "SAGA_TEST_GATE": str(gate),
        "SAGA_TEST_GATE_STEP": held,
    }

    metrics_ports: list[int] = []

    def orchestrator() -> subprocess.Popen[bytes]:
        # A /metrics port of its own, which `saga run` serves once started: no two processes share one.
        metrics_ports.append(free_port())
        return subprocess.Popen(
            [sys.executable, "-m", "tests.integration.saga_steps"],
            env=env | {"METRICS_PORT": str(metrics_ports[-1])},
            stdin=subprocess.DEVNULL,
        )

    ids = [f"kill-{index}-{unique}" for index in range(20)]
    first = orchestrator()
    try:
        for saga_id in ids:
            await start_saga(producer, {}, saga_id)

        async def all_held() -> bool:
            lines = log.read_text().splitlines() if log.exists() else []
            return {line.split()[0] for line in lines if line.endswith(f" {held}")} >= set(ids)

        await eventually(all_held, within=120, interval=0.2)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    before = await states(settings)
    assert all(before[saga_id].status == "running" for saga_id in ids), "killed with every saga under way"
    gate.touch()
    second = orchestrator()
    try:
        found = await settled(settings, ids)
        # What Prometheus scrapes from the orchestrator's pod: the sagas it resumed and finished, counted once each.
        finished = 'saga_finished_total{saga_status="completed"} ' + str(float(len(ids)))

        async def counted() -> bool:
            return finished in await asyncio.to_thread(scrape, metrics_ports[-1])

        await eventually(counted, within=30, interval=0.2)
    finally:
        second.send_signal(signal.SIGTERM)
        await asyncio.to_thread(second.wait, 30)
    assert {found[saga_id].status for saga_id in ids} == {"completed"}
    started = Counter(tuple(line.split()) for line in log.read_text().splitlines())
    assert all(started[saga_id, held] == 2 for saga_id in ids), "the step in flight when killed ran again"
    done = effects(kafka_bootstrap, saga_topics["effects"])
    assert {key: count for key, count in done.items() if key[0] in ids} == {
        (saga_id, step): 1 for saga_id in ids for step in RUNS
    }, "each step completed exactly once, as a read_committed librdkafka reader counts"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        return str(answer.read().decode())


async def test_records_that_are_not_commands_are_dead_lettered_and_the_sagas_go_on(
    kafka_bootstrap: str, unique: str, saga_topics: dict[str, str], producer: AIOKafkaProducer
) -> None:
    settings = saga_settings(kafka_bootstrap, unique)
    orchestrator = SagaOrchestrator(settings, RecordingSteps())
    await orchestrator.start()
    written: list[str] = []
    try:
        for partition in range(PARTITIONS):
            written += await asyncio.to_thread(write_hostile, kafka_bootstrap, saga_topics["commands"], partition)
        ids = [f"after-{index}-{unique}" for index in range(2 * PARTITIONS)]
        for saga_id in ids:
            await start_saga(producer, {}, saga_id)
        found = await settled(settings, ids)

        async def all_dead_lettered() -> bool:
            dead = await asyncio.to_thread(dead_letters, kafka_bootstrap, saga_topics["dead_letters"], PARTITIONS)
            return len(dead) >= len(written)

        await eventually(all_dead_lettered, within=60, interval=0.5)
        assert orchestrator.running, "no record stops the orchestrator"
    finally:
        await orchestrator.stop()
    assert {found[saga_id].status for saga_id in ids} == {"completed"}
    dead = dead_letters(kafka_bootstrap, saga_topics["dead_letters"], PARTITIONS)
    kinds = sorted(key.decode() if key else "null key and value" for key, _ in dead)
    assert kinds == sorted(written), "each hostile record dead-lettered once"
    for _, headers in dead:
        assert headers["dlq.original.topic"] == saga_topics["commands"].encode()
        assert headers["dlq.error.type"] == b"ValueError"
        assert headers["dlq.error.message"]


async def test_the_group_has_no_lag_once_every_saga_finished(
    kafka_bootstrap: str, unique: str, saga_topics: dict[str, str], producer: AIOKafkaProducer
) -> None:
    """The orchestrator's own commands are transactional: committing past their commit markers, not to the last
    offset + 1, is what leaves lag 0 at rest (what the lag alert and `doctor` read)."""
    settings = saga_settings(kafka_bootstrap, unique)
    orchestrator = SagaOrchestrator(settings, RecordingSteps())
    await orchestrator.start()
    try:
        ids = [f"rest-{index}-{unique}" for index in range(2 * PARTITIONS)]
        for saga_id in ids:
            await start_saga(producer, {}, saga_id)
        await settled(settings, ids)

        async def no_lag() -> bool:
            behind = await asyncio.to_thread(lag, kafka_bootstrap, names.GROUP, saga_topics["commands"], PARTITIONS)
            return set(behind.values()) == {0}

        await eventually(no_lag, within=60, interval=0.5)
    finally:
        await orchestrator.stop()


class Clock:
    """Epoch seconds that a step can move on, as a slow step takes time."""

    def __init__(self) -> None:
        self.ahead = 0.0

    def __call__(self) -> float:
        return time.time() + self.ahead


async def start_on(producer: AIOKafkaProducer, saga_id: str, partition: int, input: dict[str, Any]) -> None:
    command = Command(saga_id, "start", input=input)
    await producer.send_and_wait(names.COMMANDS_TOPIC, command.to_bytes(), key=saga_id.encode(), partition=partition)


async def test_a_slow_step_in_the_batch_leaves_the_next_step_of_another_saga_its_whole_timeout(
    kafka_bootstrap: str, unique: str, saga_topics: dict[str, str], producer: AIOKafkaProducer
) -> None:
    """Two sagas' first steps run in one batch and commit together; the slow one takes 1000 s (of the clock the
    orchestrator reads). The fast saga's second command becomes visible only then: its 60 s count from then."""
    clock = Clock()
    first_done = asyncio.Event()
    fast, slow = f"fast-{unique}", f"slow-{unique}"

    class Steps(RecordingSteps):
        async def _do(self, call: StepCall) -> dict[str, Any] | None:
            if call.handler == RUNS[0] and call.saga_id == fast:
                first_done.set()
            if call.handler == RUNS[0] and call.saga_id == slow:
                # Bounded: were the two steps in batches of their own, the fast one would come only after.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(first_done.wait(), 30)
                clock.ahead += 1000
            return await super()._do(call)

    settings = saga_settings(kafka_bootstrap, unique)
    plan = tuple(replace(step, timeout_seconds=60) for step in STEPS)
    for saga_id in (fast, slow):  # both before the orchestrator starts: one batch, on one partition
        await start_on(producer, saga_id, 0, {})
    orchestrator = SagaOrchestrator(settings, Steps(), plan, clock=clock)
    await orchestrator.start()
    try:
        found = await settled(settings, [fast, slow])
    finally:
        await orchestrator.stop()
    assert found[fast].status == "completed", found[fast].error
    assert found[slow].status == "completed", found[slow].error


async def test_a_command_waiting_behind_a_backlog_keeps_its_steps_whole_time(
    kafka_bootstrap: str, unique: str, saga_topics: dict[str, str], producer: AIOKafkaProducer
) -> None:
    """A batch of one command at a time: the waiting saga's first command is issued before the slow saga's step
    runs for 1000 s (of the orchestrator's clock), and is taken only after it. Its 60 s count from then."""
    clock = Clock()
    slow, waiting = f"slow-{unique}", f"waiting-{unique}"

    class Steps(RecordingSteps):
        async def _do(self, call: StepCall) -> dict[str, Any] | None:
            if call.handler == RUNS[0] and call.saga_id == slow:
                clock.ahead += 1000
            return await super()._do(call)

    settings = saga_settings(kafka_bootstrap, unique)
    plan = tuple(replace(step, timeout_seconds=60) for step in STEPS)
    for saga_id in (slow, waiting):  # in this order, on one partition, before the orchestrator starts
        await start_on(producer, saga_id, 0, {})
    steps = Steps()
    orchestrator = SagaOrchestrator(settings, steps, plan, clock=clock, saga=saga_config(max_records=1))
    await orchestrator.start()
    try:
        found = await settled(settings, [slow, waiting])
    finally:
        await orchestrator.stop()
    assert found[waiting].status == "completed", found[waiting].error
    assert [handler for saga_id, handler in steps.calls if saga_id == waiting] == RUNS


async def test_a_step_cut_off_by_a_restart_gets_only_what_was_left_of_its_time(
    kafka_bootstrap: str, unique: str, saga_topics: dict[str, str], producer: AIOKafkaProducer
) -> None:
    """The first orchestrator takes the first step and stops mid-step; 1000 s later (of the clock both read) the next
    one finds the step's 60 s spent: timed out without calling its handler again, and compensated."""
    clock = Clock()
    saga_id = f"cut-{unique}"
    entered = asyncio.Event()

    class Hanging(RecordingSteps):
        async def _do(self, call: StepCall) -> dict[str, Any] | None:
            entered.set()
            await asyncio.Event().wait()  # until the orchestrator stops
            return None

    settings = saga_settings(kafka_bootstrap, unique)
    plan = tuple(replace(step, timeout_seconds=60) for step in STEPS)
    first = SagaOrchestrator(settings, Hanging(), plan, clock=clock)
    await first.start()
    try:
        await start_saga(producer, {}, saga_id)
        await asyncio.wait_for(entered.wait(), 60)
    finally:
        await first.stop()
    clock.ahead += 1000
    steps = RecordingSteps()
    second = SagaOrchestrator(settings, steps, plan, clock=clock)
    await second.start()
    try:
        state = (await settled(settings, [saga_id]))[saga_id]
    finally:
        await second.stop()
    assert state.status == "compensated", state
    assert state.error == f"{RUNS[0]}: {RUNS[0]} timed out after 60 s"
    assert (saga_id, RUNS[0]) not in steps.calls, "its handler was not called again"


async def test_a_step_past_its_timeout_is_compensated_as_its_effect_may_exist(
    kafka_bootstrap: str, unique: str, saga_topics: dict[str, str], producer: AIOKafkaProducer
) -> None:
    timed = next(name for name in RUNS if COMPENSATIONS[name])
    index = RUNS.index(timed)
    settings = saga_settings(kafka_bootstrap, unique)
    plan = tuple(replace(step, timeout_seconds=1) if step.name == timed else step for step in STEPS)
    steps = RecordingSteps()
    orchestrator = SagaOrchestrator(settings, steps, plan)
    await orchestrator.start()
    try:
        await start_saga(producer, {"sleep": {timed: 30}}, f"late-{unique}")
        state = (await settled(settings, [f"late-{unique}"], within=60))[f"late-{unique}"]
    finally:
        await orchestrator.stop()
    undo_earlier = [name for name in reversed(RUNS[:index]) if COMPENSATIONS[name]]
    assert state.status == "compensated", state
    assert state.timed_out == (timed,)
    assert state.compensated == (timed, *undo_earlier), "the cut-short step first, then the completed ones"
    calls = [handler for called, handler in steps.calls if called == f"late-{unique}"]
    assert calls == [*RUNS[: index + 1], COMPENSATIONS[timed], *(COMPENSATIONS[name] for name in undo_earlier)]


def write_states(bootstrap: str, states: list[SagaState], partition: int) -> None:
    """Put sagas in the state topic as an earlier orchestrator left them, with librdkafka."""
    writer = Producer(librdkafka(bootstrap))
    for state in states:
        writer.produce(names.STATE_TOPIC, state.to_bytes(), key=state.saga_id.encode(), partition=partition)
    assert writer.flush(30) == 0


def latest_by_key(bootstrap: str, topic: str) -> dict[bytes, bytes | None]:
    latest: dict[bytes, bytes | None] = {}
    for key, value in read_with_librdkafka(bootstrap, topic):
        if key is not None:
            latest[key] = value
    return latest


async def test_a_saga_finished_longer_ago_than_the_retention_is_tombstoned(
    kafka_bootstrap: str, unique: str, saga_topics: dict[str, str]
) -> None:
    settings = saga_settings(kafka_bootstrap, unique)
    now = time.time()
    old = SagaState(f"old-{unique}", "completed", {}, completed=tuple(RUNS), updated_at=now - 30 * 86400)
    recent = SagaState(f"recent-{unique}", "completed", {}, completed=tuple(RUNS), updated_at=now - 60)
    await asyncio.to_thread(write_states, kafka_bootstrap, [old, recent], 1)
    orchestrator = SagaOrchestrator(settings, RecordingSteps(), saga=saga_config(finished_retention_seconds=86400))
    await orchestrator.start()
    try:

        async def tombstoned() -> bool:
            latest = await asyncio.to_thread(latest_by_key, kafka_bootstrap, saga_topics["state"])
            return latest.get(old.saga_id.encode(), b"") is None

        await eventually(tombstoned, within=60, interval=0.5)
    finally:
        await orchestrator.stop()
    latest = latest_by_key(kafka_bootstrap, saga_topics["state"])
    assert latest[recent.saga_id.encode()] is not None, "a saga finished within the retention stays"
    loaded = await read_states(settings, 1)
    assert old.saga_id not in loaded, "the loader takes a tombstone for a deleted saga"
    assert loaded[recent.saga_id].status == "completed"


async def test_a_saga_whose_command_is_older_than_the_commands_retention_gets_it_again(
    kafka_bootstrap: str, unique: str, saga_topics: dict[str, str]
) -> None:
    """An orchestrator down for longer than the commands topic keeps records: the pending command is gone."""
    settings = saga_settings(kafka_bootstrap, unique)
    issued = time.time() - 30 * 86400
    pending = Command(f"stuck-{unique}", "run", RUNS[0], 1, issued + 60)
    stuck = SagaState(pending.saga_id, "running", {}, pending=pending, updated_at=issued)
    await asyncio.to_thread(write_states, kafka_bootstrap, [stuck], 2)
    orchestrator = SagaOrchestrator(settings, RecordingSteps(), saga=saga_config(commands_retention_seconds=86400))
    await orchestrator.start()
    try:
        state = (await settled(settings, [stuck.saga_id], within=90))[stuck.saga_id]
    finally:
        await orchestrator.stop()
    assert state.status == "completed"
    assert state.completed == tuple(RUNS)


async def test_a_send_that_fails_aborts_its_transaction_and_the_step_runs_again(
    kafka_bootstrap: str, unique: str, saga_topics: dict[str, str], producer: AIOKafkaProducer
) -> None:
    """aiokafka commits a transaction even when one of its sends failed; the orchestrator must not."""
    limited = f"test.saga.{unique}.limited"
    # The broker refuses a record over 1 KiB here: a produce error no retry cures.
    await create_topics(kafka_bootstrap, NewTopic(limited, 1, 1, topic_configs={"max.message.bytes": "1024"}))
    saga_id = f"refused-{unique}"
    tries: list[int] = []

    class Steps(RecordingSteps):
        async def _do(self, call: StepCall) -> dict[str, Any] | None:
            if call.handler == RUNS[0]:
                tries.append(len(tries) + 1)
                size = 4096 if len(tries) == 1 else 16
                call.send(limited, b"x" * size, key=call.saga_id.encode())
            return await super()._do(call)

    settings = saga_settings(kafka_bootstrap, unique)
    orchestrator = SagaOrchestrator(settings, Steps(saga_topics["effects"]))
    await orchestrator.start()
    try:
        await start_saga(producer, {}, saga_id)
        state = (await settled(settings, [saga_id]))[saga_id]
    finally:
        await orchestrator.stop()
    assert state.status == "completed"
    assert len(tries) >= 2, "the step whose record was refused ran again"
    stored = [value for key, value in read_with_librdkafka(kafka_bootstrap, limited, 1) if key == saga_id.encode()]
    assert stored == [b"x" * 16], "the refused record's transaction aborted; its retry's committed"
    done = effects(kafka_bootstrap, saga_topics["effects"])
    assert done[saga_id, RUNS[0]] == 1, "the step's other records committed once, with the retry"
