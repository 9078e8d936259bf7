"""The `saga` chaos row, run by tools/chaos/scenario.py (its `KINDS`) in the agent-patterns project's interpreter (cwd =
project): sagas through the project's own orchestrator, some failing on purpose, the orchestrator killed -9. Gets
scenario.py itself for its machinery (workers, logging)."""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from .judgement import saga_verdict


class StateTail:
    """Follows the saga state topic as a read_committed reader: the latest state per saga, and how many committed
    transitions there were (one per command the orchestrator handled). A state whose pending command has a deadline
    only records that the command was taken, before its handler ran: not a transition."""

    def __init__(self, bootstrap: str, topic: str, partitions: int) -> None:
        self.tps = [TopicPartition(topic, p) for p in range(partitions)]
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            isolation_level="read_committed",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=5000,
        )
        self.latest: dict[str, dict[str, Any]] = {}
        self.transitions = 0
        self.history: dict[str, list[tuple[int, int, str]]] = {}
        """Each saga's transitions: (partition, offset, what the state says), to name the sagas of a surplus."""

    async def start(self) -> None:
        await self.consumer.start()
        self.consumer.assign(self.tps)
        for tp in self.tps:
            self.consumer.seek(tp, 0)

    async def poll(self) -> None:
        for records in (await self.consumer.getmany(timeout_ms=200)).values():
            for record in records:
                state = json.loads(record.value)
                saga_id = record.key.decode()
                if (state["pending"] or {}).get("deadline") is None:
                    self.transitions += 1
                    pending = state["pending"]
                    seen = state["status"]
                    if pending:
                        seen += f" -> {pending['action']} {pending['step']} #{pending['attempt']}"
                    self.history.setdefault(saga_id, []).append((record.partition, record.offset, seen))
                self.latest[saga_id] = state

    def settled(self, ids: list[str]) -> int:
        return sum(1 for saga_id in ids if self.latest.get(saga_id, {}).get("status") in TERMINAL_STATUSES)


TERMINAL_STATUSES = {"completed", "compensated", "failed"}


def read_effects(counting: Any, client: str, bootstrap: str, topic: str, partitions: int) -> Counter[tuple[str, str]]:
    """How many times each (saga id, handler) completed, from the effects the test steps send in each step's
    transaction, as a client of the other kind than the service's reads them (read_committed)."""
    counted: Counter[tuple[str, str]] = Counter()
    for seen in counting.read(client, bootstrap, topic, partitions):
        effect = json.loads(seen.value or b"{}")
        counted[effect["saga_id"], effect["handler"]] += 1
    return counted


async def run_saga(args: dict[str, Any], scenario: Any) -> dict[str, Any]:
    """`inputs` sagas through the project's saga orchestrator (`python -m tests.integration.saga_steps`: its own
    code, with steps that record their effects), a fifth of them failing at each step in turn and a fifth at none;
    the orchestrator killed -9 `kills` times and restarted. The last tenth of the sagas starts only once every
    planned kill was done; a kill falls due at its share of the transitions, or as soon as every saga started so far
    has settled."""
    package, bootstrap, n, kills = args["package"], args["bootstrap"], args["inputs"], args["kills"]
    definition = importlib.import_module(f"{package}.patterns.saga.definition")
    names: Any = importlib.import_module(f"{package}.patterns.saga.names")
    start = importlib.import_module(f"{package}.patterns.saga.start")
    runs = [step.name for step in definition.STEPS]
    undo = {step.name: step.compensation for step in definition.STEPS}
    workdir = Path(args["workdir"])
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    partitions = 3
    run_id = uuid.uuid4().hex[:8]
    topics = {kind: f"chaos.saga.{run_id}.{kind}" for kind in ("commands", "state", "effects")}
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(topics["commands"], partitions, 1),
                NewTopic(topics["state"], partitions, 1, topic_configs={"cleanup.policy": "compact"}),
                NewTopic(topics["effects"], partitions, 1),
            ]
        )
    finally:
        await admin.close()
    names.COMMANDS_TOPIC = topics["commands"]  # where start_saga() sends

    plan: dict[str, str | None] = {}
    for i in range(n):
        slot = i % (len(runs) + 1)
        plan[f"saga-{run_id}-{i}"] = runs[slot] if slot < len(runs) else None

    def transitions(fail_at: str | None) -> int:
        """Commands one saga takes: its start, each step run, each compensation."""
        if fail_at is None:
            return 1 + len(runs)
        index = runs.index(fail_at)
        return 1 + index + 1 + sum(1 for name in runs[:index] if undo[name])

    ids = list(plan)
    held = ids[len(ids) - len(ids) // 10 :] if kills else []
    flowing = ids[: len(ids) - len(held)]
    flowing_total = sum(transitions(plan[i]) for i in flowing)
    env = {
        "KAFKA_CREATE_TOPICS": "false",
        "SAGA_TRANSACTIONAL_ID_PREFIX": f"chaos-saga-{run_id}-",
        "SAGA_TEST_COMMANDS": topics["commands"],
        "SAGA_TEST_STATE": topics["state"],
        "SAGA_TEST_GROUP": f"{args['group']}-{run_id}",
        "SAGA_TEST_EFFECTS": topics["effects"],
        "SAGA_TEST_LOG": str(workdir / f"calls-{run_id}.log"),  # a line per handler call, as it starts
    }
    calls = Path(env["SAGA_TEST_LOG"])

    def calls_so_far() -> int:
        return calls.stat().st_size if calls.exists() else 0

    fleet = scenario.Workers(
        package, env["SAGA_TEST_GROUP"], workdir, env, [sys.executable, "-m", "tests.integration.saga_steps"]
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    tail = StateTail(bootstrap, topics["state"], partitions)
    await producer.start()
    await tail.start()
    started: list[str] = []

    async def begin(batch: list[str]) -> None:
        for saga_id in batch:
            fail_at = plan[saga_id]
            await start.start_saga(producer, {"fail_at": fail_at} if fail_at else {}, saga_id, 60.0)
            started.append(saga_id)

    done_kills = 0
    restarted_at = 0  # the call log's size when the orchestrator last started: a kill waits until it grew
    stalled = False
    t0 = time.monotonic()
    last_progress, last_move = -1, time.monotonic()
    try:
        fleet.start(0)
        arriving = asyncio.create_task(begin(flowing))
        while True:
            await tail.poll()
            progress = tail.transitions
            settled = tail.settled(ids)
            if settled == n:
                break
            caught_up = arriving.done() and tail.settled(started) == len(started)
            # Each kill lands on an orchestrator at work: one that has called a handler since it started.
            working = calls_so_far() > restarted_at
            due = progress >= (done_kills + 1) * flowing_total / (kills + 1)
            if done_kills < kills and (caught_up or (due and working)):
                fleet.kill(0)
                done_kills += 1
                scenario.log(
                    f"kill -9 #{done_kills} of the orchestrator at {progress} transitions, {settled}/{n} settled"
                )
                restarted_at = calls_so_far()
                fleet.start(0)
                if done_kills == kills:
                    await arriving
                    await begin(held)
                    scenario.log(f"the last {len(held)} sagas started")
            fleet.restart_exited()
            if progress != last_progress:
                last_progress, last_move = progress, time.monotonic()
            elif time.monotonic() - last_move > args.get("stall_seconds", 120):
                stalled = True
                scenario.log(f"stalled at {progress} transitions, {settled}/{n} settled")
                break
            await asyncio.sleep(0.1)
        await arriving
    finally:
        await asyncio.to_thread(fleet.stop)
        await producer.stop()
    seconds = time.monotonic() - t0
    # A last look: every state committed up to now.
    await asyncio.sleep(1)
    await tail.poll()
    await tail.consumer.stop()
    client = args.get("client", "aiokafka")
    effects = await asyncio.to_thread(read_effects, scenario.counting, client, bootstrap, topics["effects"], partitions)

    stuck = [
        saga_id for saga_id in ids if tail.latest.get(saga_id, {}).get("status") not in {"completed", "compensated"}
    ]
    doubled = sum(1 for (saga_id, _), count in effects.items() if saga_id in plan and count > 1)
    verdicts = Counter(
        saga_verdict(state, {h for (sid, h) in effects if sid == saga_id}, runs, undo, fail_at)
        for saga_id, fail_at in plan.items()
        if (state := tail.latest.get(saga_id)) is not None
    )
    statuses = Counter(tail.latest.get(saga_id, {}).get("status", "missing") for saga_id in ids)
    return {
        "inputs": n,
        "kills": done_kills,
        "stalled": stalled,
        "crashes": fleet.crashes,
        "seconds": round(seconds, 1),
        "completed": statuses["completed"],
        "compensated": statuses["compensated"],
        "stuck": len(stuck),
        "doubled": doubled,
        "inconsistent": sum(n for (consistent, _, _), n in verdicts.items() if not consistent),
        "unplanned": sum(n for (_, planned, _), n in verdicts.items() if not planned),
        "timed_out": sum(n for (_, _, timed_out), n in verdicts.items() if timed_out),
        "step_effects": sum(count for (saga_id, _), count in effects.items() if saga_id in plan),
        "transitions": tail.transitions,
        "expected_transitions": sum(transitions(fail_at) for fail_at in plan.values()),
        # A few sagas with more transitions than their plan, and what each one was: where a surplus comes from.
        "surplus": {
            saga_id: tail.history.get(saga_id, [])
            for saga_id in [s for s, fail_at in plan.items() if len(tail.history.get(s, [])) > transitions(fail_at)][:3]
        },
        "handler_calls": await asyncio.to_thread(lambda: len(calls.read_text().splitlines()) if calls.exists() else 0),
    }


KINDS = {"saga": run_saga}
