"""The "queue tasks" chaos row: agent tasks on a queue topic (`delivery: queue`, a share group, KIP-932), taken by
four workers on its two partitions, each killed -9 in turn; run with the task-queue project's own interpreter
(cwd = project), as scenario.py is:

    .venv/bin/python .../tools/chaos/queue_tasks.py '{"kind": "queue", "inputs": 5000, "kills": 5, ...}'

The workers' handler is tools/chaos/queue_worker.py's: 50 to 500 ms a task, most emitting one event, a few failing
on every delivery (retryable) and a few permanently. Half the tasks wait as a backlog before the workers start, the
rest arrive while they run, the last tenth only after every planned kill. Each kill waits for a condition, never for
a time: its share of the tasks concluded (or all those published so far), then a worker whose handler is in the
middle of a task (its journal: started, at least MARGIN_S of its sleep left), so that every kill lands on a task in
flight, whatever the machine's speed. Every second kill waits for a task on its LAST allowed delivery (a failing
task's QUEUE_DELIVERY_LIMIT-th handler call) while one may still come: the broker archives a task whose last
delivery goes unanswered, so the service must dead-letter it on one of the group's spare deliveries.

Counted by a client of the other kind than the service's (counting.py) on the topic the tasks emit to and on the
dead-letter topic: each task that succeeds has its output once; each that fails has one dead letter, after the
delivery limit (or at once, when permanent); none has neither. Redeliveries are counted from the handlers' journal.
Prints one JSON result line.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from aiokafka import AIOKafkaConsumer, TopicPartition
from confluent_kafka import AcknowledgeType, Producer, ShareConsumer
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._config import AlterConfigOpType, ConfigEntry, ConfigResource
from confluent_kafka.admin._resource import ResourceType

scenario: Any = importlib.import_module("scenario")
counting: Any = importlib.import_module("counting")
queue_worker: Any = importlib.import_module("queue_worker")

WORKER = Path(__file__).resolve().parent / "queue_worker.py"
MARGIN_S = 0.1
"""What must be left of a handler's sleep for a kill to land in it: the task is in flight, nothing written yet."""
LIMIT = 5
"""QUEUE_DELIVERY_LIMIT of the row's workers (the service's default)."""
SPARES = 3
"""The deliveries the share group allows beyond LIMIT (the service's SPARE_DELIVERIES): a spare dead-letters a task
on the first of them a worker sees, which is later than LIMIT + 1 when a killed worker spent one unseen."""
SPARE_COUNTS = range(LIMIT + 1, LIMIT + SPARES + 1)


@dataclass
class Call:
    event: str
    started: float
    ms: float


class Journal:
    """The handlers' journal files, read as they grow: calls per task, and each process's call in flight."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.read_to: dict[Path, int] = {}
        self.calls: Counter[str] = Counter()
        self.in_flight: dict[int, Call] = {}

    def read(self) -> None:
        for path in sorted(self.folder.glob("*.log")):
            with path.open("rb") as file:
                file.seek(self.read_to.get(path, 0))
                chunk = file.read()
            complete = chunk[: chunk.rfind(b"\n") + 1]  # a line being written is read next time
            self.read_to[path] = self.read_to.get(path, 0) + len(complete)
            pid = int(path.stem.rsplit("-", 1)[1])
            for line in complete.decode().splitlines():
                what, at, event, *rest = line.split()
                if what == "start":
                    self.calls[event] += 1
                    self.in_flight[pid] = Call(event, float(at), float(rest[1]))
                elif pid in self.in_flight and self.in_flight[pid].event == event:
                    del self.in_flight[pid]


class Outcomes:
    """What the service wrote for our tasks, read as it is written (aiokafka, read_committed): outputs by the
    causation id, dead letters by the task's event id."""

    def __init__(self, bootstrap: str, output: str, dead_letters: str, partitions: dict[str, int]) -> None:
        self.bootstrap = bootstrap
        self.tps = [TopicPartition(topic, p) for topic in (output, dead_letters) for p in range(partitions[topic])]
        self.output = output
        self.concluded: set[bytes] = set()
        self.consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, isolation_level="read_committed", enable_auto_commit=False
        )
        await self.consumer.start()
        self.consumer.assign(self.tps)
        await self.consumer.seek_to_end(*self.tps)
        for tp in self.tps:
            await self.consumer.position(tp)  # where this run's records begin

    async def follow(self) -> None:
        assert self.consumer is not None
        while True:
            for tp, batch in (await self.consumer.getmany(timeout_ms=200)).items():
                header = "causation-id" if tp.topic == self.output else "event-id"
                for record in batch:
                    found = dict(record.headers).get(header)
                    if found is not None:
                        self.concluded.add(found)

    async def stop(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()


def partitions_of(bootstrap: str, declared: dict[str, int]) -> dict[str, int]:
    """Each topic's partitions as the broker has them. The lane's earlier rows may have made a topic of the same name
    (`agent.tasks`, its dead letters) with more partitions than this service declares: the share group starts on
    each of them, and its records there are counted too."""
    metadata = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=30)
    found = {name: len(topic.partitions) for name, topic in metadata.topics.items() if topic.error is None}
    return {name: found.get(name, count) for name, count in declared.items()}


def start_at_end(bootstrap: str, group: str, topic: str, partitions: int, within: float = 120) -> None:
    """Start the share group where the topic ends now, so it takes only this run's tasks (the service asks for
    "earliest", which a group whose start is already set ignores): set "latest", join, and take a marker published
    on each partition after the group's start was set."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    latest = ConfigEntry("share.auto.offset.reset", "latest", incremental_operation=AlterConfigOpType.SET)
    resource = ConfigResource(ResourceType.GROUP, group, incremental_configs=[latest])
    (future,) = admin.incremental_alter_configs([resource]).values()
    future.result(timeout=30)
    member = ShareConsumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "share.acknowledgement.mode": "explicit"}
    )
    producer = Producer({"bootstrap.servers": bootstrap})
    member.subscribe([topic])
    seen: set[int] = set()
    deadline = time.monotonic() + within
    try:
        while len(seen) < partitions:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the share group {group} took no marker on {sorted(set(range(partitions)) - seen)}")
            for partition in set(range(partitions)) - seen:
                producer.produce(topic, b"chaos: the share group starts here", partition=partition)
            producer.flush(30)
            for message in member.poll(2.0):
                if message.error() is None:
                    member.acknowledge(message, AcknowledgeType.ACCEPT)
                    seen.add(message.partition() or 0)
            member.commit_sync()
    finally:
        member.close()


async def run(args: dict[str, Any]) -> dict[str, Any]:
    project = scenario.Project(args["package"])
    project.models = importlib.import_module(f"{project.package}.events.models")
    bootstrap, n, kills, workers = args["bootstrap"], args["inputs"], args["kills"], args.get("workers", 4)
    source = project.catalog.QUEUE_TOPICS[0]
    output = project.catalog.topic_for(project.models.TaskFinished(task_id="-", agent="-", outcome="-"))
    share_group = f"{args['group']}.queue"
    workdir = Path(args["workdir"])
    journal = Journal(workdir / "journal")
    await asyncio.to_thread(journal.folder.mkdir, parents=True, exist_ok=True)
    failing, permanent = args.get("failing_per_mille", 30), args.get("permanent_per_mille", 10)

    await project.publish([])  # the topics
    declared = {source.name: source.partitions, output.name: output.partitions, source.dead_letter: source.partitions}
    partitions = await asyncio.to_thread(partitions_of, bootstrap, declared)
    await asyncio.to_thread(start_at_end, bootstrap, share_group, source.name, partitions[source.name])
    outcomes = Outcomes(bootstrap, output.name, source.dead_letter, partitions)
    await outcomes.start()
    following = asyncio.create_task(outcomes.follow())

    events = [project.samples.sample_event(source, key=f"task-{uuid.uuid4().hex[:12]}") for _ in range(n)]
    ids = {str(e.event_id).encode() for e in events}
    kind = {str(e.event_id): queue_worker.outcome(str(e.event_id), failing, permanent) for e in events}
    held = events[n - n // 10 :] if kills else []
    flowing = events[: n - len(held)]
    backlog, streamed = flowing[: len(flowing) // 2], flowing[len(flowing) // 2 :]
    retried = {str(e.event_id) for e in flowing if kind[str(e.event_id)] == queue_worker.FAILING}
    await project.publish(backlog)
    published = len(backlog)

    def acked() -> None:
        nonlocal published
        published += 1

    env = {
        "KAFKA_SHARE_GROUP": share_group,
        "CONSUMER_CONCURRENCY": "1",  # one share group member per worker: a kill lands on its one task in flight
        "QUEUE_DELIVERY_LIMIT": str(LIMIT),
        # The lock, twice a handler's bound and its writes: 16 s, so a killed worker's task comes back soon.
        "HANDLER_TIMEOUT_SECONDS": "2",
        "PUBLISH_TIMEOUT_SECONDS": "2",
        "PROCESSED_EVENTS_PATH": str(workdir / "processed.sqlite"),  # shared by the workers, as one store
        "CHAOS_TASK_MS": args.get("task_ms", "50-500"),
        "CHAOS_FAILING_PER_MILLE": str(failing),
        "CHAOS_PERMANENT_PER_MILLE": str(permanent),
        "CHAOS_JOURNAL": str(journal.folder),
    }
    command = [sys.executable, str(WORKER), project.package]
    fleet = scenario.Workers(project.package, args["group"], workdir, env, command)
    scenario.log(
        f"{len(backlog)} tasks waiting on {source.name}; {len(streamed)} arrive while {workers} workers run, "
        f"{len(held)} after {kills} kill(s)"
    )
    arriving = asyncio.create_task(project.publish(streamed, concurrency=50, on_ack=acked))
    killed: list[dict[str, Any]] = []
    stalled = False
    t0 = last_move = time.monotonic()
    last = -1
    try:
        for slot in range(workers):
            fleet.start(slot)
        while True:
            await asyncio.to_thread(journal.read)
            concluded = len(ids & outcomes.concluded)
            if concluded >= n:
                break
            due = len(killed) < kills and (
                concluded >= (len(killed) + 1) * (n - len(held)) / (kills + 1) or concluded >= published
            )
            victim = target(fleet, journal, kind, len(killed), retried - outcomes_ids(outcomes)) if due else None
            if due and not victim and held and arriving.done() and concluded >= published:
                # Every task so far concluded and a kill still due: a few of the held tasks give it one to land on,
                # however fast the workers were.
                early, held = held[:workers], held[workers:]
                await project.publish(early, on_ack=acked)
                scenario.log(f"{len(early)} held tasks published for kill #{len(killed) + 1} to land on")
            if victim:
                slot, call = victim
                fleet.kill(slot)
                on_last = kind[call.event] == queue_worker.FAILING and journal.calls[call.event] == LIMIT
                killed.append({"event": call.event, "call": journal.calls[call.event], "last_delivery": on_last})
                scenario.log(
                    f"kill -9 #{len(killed)} (worker {slot}, a {kind[call.event]} task on its handler call "
                    f"{journal.calls[call.event]}{', its last delivery' if on_last else ''}) at {concluded}/{n}"
                )
                fleet.start(slot)
                if len(killed) == kills:
                    await arriving
                    await project.publish(held, on_ack=acked)
                    scenario.log(f"the last {len(held)} tasks published")
            fleet.restart_exited()
            if concluded != last:
                last, last_move = concluded, time.monotonic()
            elif time.monotonic() - last_move > args.get("stall_seconds", 120):
                stalled = True
                scenario.log(f"stalled at {concluded}/{n}")
                break
            await asyncio.sleep(0.02)
    finally:
        await arriving
        await asyncio.to_thread(fleet.stop)
        following.cancel()
        await asyncio.gather(following, return_exceptions=True)
        await outcomes.stop()
    seconds = time.monotonic() - t0
    await asyncio.to_thread(journal.read)
    client = args.get("client", "confluent-kafka")
    outputs = await asyncio.to_thread(counting.read, client, bootstrap, output.name, partitions[output.name])
    letters = await asyncio.to_thread(
        counting.read, client, bootstrap, source.dead_letter, partitions[source.dead_letter]
    )
    return {
        "inputs": n,
        "kills": len(killed),
        "stalled": stalled,
        "crashes": fleet.crashes,
        "seconds": round(seconds, 1),
        "workers": workers,
        "partitions": partitions[source.name],
    } | judged(ids, kind, outputs, letters, journal, killed)


def outcomes_ids(outcomes: Outcomes) -> set[str]:
    return {found.decode() for found in outcomes.concluded}


def target(
    fleet: Any, journal: Journal, kind: dict[str, str], done: int, failing_open: set[str]
) -> tuple[int, Call] | None:
    """A worker in the middle of a task, with its call; every second kill one on a failing task's last allowed
    delivery, while a failing task remains that may still reach it."""
    now = time.time()
    candidates = []
    for slot, proc in fleet.procs.items():
        call = journal.in_flight.get(proc.pid)
        if proc.poll() is None and call and call.started + call.ms / 1000 - now >= MARGIN_S:
            candidates.append((slot, call))
    if done % 2 == 1 and failing_open:
        candidates = [
            (slot, call)
            for slot, call in candidates
            if kind.get(call.event) == queue_worker.FAILING and journal.calls[call.event] == LIMIT
        ]
    return candidates[0] if candidates else None


def judged(
    ids: set[bytes],
    kind: dict[str, str],
    outputs: list[Any],
    letters: list[Any],
    journal: Journal,
    killed: list[dict[str, Any]],
) -> dict[str, Any]:
    """Per task: its outputs and dead letters, as the other client counted them."""
    produced = Counter(r.headers.get("causation-id") for r in outputs)
    dead: dict[bytes, list[Any]] = {}
    for letter in letters:
        dead.setdefault(letter.headers.get("event-id"), []).append(letter)
    lost = duplicates = ok_dead = wrong = spare = 0
    for task in ids:
        made, buried = produced[task], dead.get(task, [])
        if made + len(buried) == 0:
            lost += 1
        duplicates += max(made + len(buried) - 1, 0)
        for letter in buried:
            attempts = int(letter.headers.get("dlq.attempts", b"0"))
            error = letter.headers.get("dlq.error.type", b"").decode()
            expected = {
                queue_worker.OK: {(a, "DeliveryLimitError") for a in SPARE_COUNTS},
                queue_worker.FAILING: {(LIMIT, "RuntimeError")} | {(a, "DeliveryLimitError") for a in SPARE_COUNTS},
                queue_worker.PERMANENT: {(a, "Permanent") for a in range(1, LIMIT + 1)}
                | {(a, "DeliveryLimitError") for a in SPARE_COUNTS},
            }[kind[task.decode()]]
            wrong += (attempts, error) not in expected
            spare += error == "DeliveryLimitError"
        if made and kind[task.decode()] != queue_worker.OK:
            wrong += 1
        ok_dead += kind[task.decode()] == queue_worker.OK and bool(buried)
    on_last = [k for k in killed if k["last_delivery"]]
    buried_spare = sum(
        any(
            letter.headers.get("dlq.error.type") == b"DeliveryLimitError"
            for letter in dead.get(k["event"].encode(), [])
        )
        for k in on_last
    )
    calls = sum(journal.calls[task.decode()] for task in ids)
    ran = sum(1 for task in ids if journal.calls[task.decode()])
    reruns_ok = sum(
        journal.calls[t.decode()] - 1
        for t in ids
        if kind[t.decode()] == queue_worker.OK and journal.calls[t.decode()] > 1
    )
    counts = Counter(kind[task.decode()] for task in ids)
    return {
        "outputs": sum(produced[task] for task in ids),
        "dead_lettered": sum(len(dead.get(task, [])) for task in ids),
        "lost": lost,
        "duplicates": duplicates,
        "succeeding": counts[queue_worker.OK],
        "failing": counts[queue_worker.FAILING],
        "permanent": counts[queue_worker.PERMANENT],
        "wrong_dead_letters": wrong,
        "ok_dead_lettered": ok_dead,
        "spare_dead_letters": spare,
        "handler_calls": calls,
        "redeliveries": calls - ran,
        "reruns_after_kills": reruns_ok,
        "last_delivery_kills": len(on_last),
        "last_delivery_dead_lettered": buried_spare,
        "delivery_limit": LIMIT,
    }


def main() -> None:
    args = json.loads(sys.argv[1])
    print(json.dumps(asyncio.run(run(args))), flush=True)


if __name__ == "__main__":
    main()
