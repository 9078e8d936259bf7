"""One chaos scenario against a generated project, run with that project's own interpreter (cwd = project):

    .venv/bin/python .../tools/chaos/scenario.py '{"kind": "kills", ...}'

Drives the project's real code: inputs are published through its EventPublisher (the app's lifespan, consumer
off), processing is `python -m <package> worker` subprocesses killed with SIGKILL. What the service wrote is counted
by a client of the other kind than its own (counting.py), the exactly-once outputs by both. Prints one JSON result
line.
A pattern's own kinds are in its folder (tools/chaos/patterns/<name>/scenario.py, `KINDS`), found through the
`patterns` package beside this script; each gets this module for its machinery.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, os.getcwd())  # the project's tests.samples builds valid events of its spec
sys.path.insert(0, os.path.join(os.getcwd(), "scripts"))  # and its launcher stops and starts the broker

import kafka_stack
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError
from confluent_kafka import TopicPartition as Partition

counting: Any = importlib.import_module("counting")  # beside this script


def log(message: str) -> None:
    print(f"    [{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Project:
    def __init__(self, package: str) -> None:
        self.package = package
        self.main = importlib.import_module(f"{package}.main")
        self.catalog = importlib.import_module(f"{package}.events.catalog")
        self.settings = importlib.import_module(f"{package}.settings")
        self.samples = importlib.import_module("tests.samples")
        # The consumed topic the rows publish to: a stream's, or a queue's where the service has no stream.
        self.source = (*self.catalog.CONSUMED_TOPICS, *getattr(self.catalog, "QUEUE_TOPICS", ()))[0]

    async def publish(self, events: list[Any], concurrency: int = 200, on_ack: Any = None) -> int:
        """Publish through the service's own EventPublisher; a refused or unacknowledged event is sent again
        with the same event_id, as a client would. Returns how many sends were retried."""
        settings = self.settings.Settings(consumer_enabled=False, publish_timeout_seconds=120.0, log_level="CRITICAL")
        app = self.main.create_app(settings)
        retries = 0
        gate = asyncio.Semaphore(concurrency)

        async def one(event: Any) -> None:
            nonlocal retries
            async with gate:
                while True:
                    try:
                        await app.state.publisher.publish(event)
                    except Exception as error:  # PublishError, registry hiccups: retry with the same event_id
                        retries += 1
                        log(f"publish retried after {type(error).__name__}")
                        await asyncio.sleep(0.5)
                    else:
                        if on_ack is not None:
                            on_ack()
                        return

        async with app.router.lifespan_context(app):
            await asyncio.gather(*(one(event) for event in events))
        return retries


async def partitions(bootstrap: str, topic: str, count: int) -> list[TopicPartition]:
    return [TopicPartition(topic, p) for p in range(count)]


async def end_offsets(bootstrap: str, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        return dict(await consumer.end_offsets(tps))
    finally:
        await consumer.stop()


async def commit_group_at(bootstrap: str, group: str, offsets: dict[TopicPartition, int]) -> None:
    """Start the group where the topic ends now, so it sees only this scenario's inputs."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit(offsets)
    finally:
        await consumer.stop()


async def read_all(bootstrap: str, topic: str, count: int, within: float = 120) -> list[Any]:
    """Every record of `topic` up to its end, as a read_committed reader sees them."""
    tps = await partitions(bootstrap, topic, count)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, isolation_level="read_committed", enable_auto_commit=False, max_poll_records=5000
    )
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        records: list[Any] = []
        async with asyncio.timeout(within):
            while any([await consumer.position(tp) < ends[tp] for tp in tps]):
                for batch in (await consumer.getmany(timeout_ms=500)).values():
                    records.extend(batch)
        return records
    finally:
        await consumer.stop()


def instance_id(group: str, slot: int) -> str:
    return f"{group}-{slot}"


class Workers:
    """`python -m <package> worker` processes of one consumer group, one per slot, their logs in `workdir`."""

    def __init__(
        self, package: str, group: str, workdir: Path, extra_env: dict[str, str], command: list[str] | None = None
    ) -> None:
        self.package = package
        self.command = command or [sys.executable, "-m", package, "worker"]
        self.group = group
        self.env = os.environ | {
            "KAFKA_CONSUMER_GROUP": group,
            "CONSUMER_SESSION_TIMEOUT_MS": "6000",  # the broker's minimum: a killed member is replaced quickly
            "CONSUMER_HEARTBEAT_INTERVAL_MS": "1000",
            "CONSUMER_MAX_RECORDS": "500",
            "LOG_LEVEL": "WARNING",
            **extra_env,
        }
        self.workdir = workdir
        self.started = 0
        self.crashes = 0
        self.procs: dict[int, subprocess.Popen[bytes]] = {}

    def start(self, slot: int = 0) -> None:
        self.started += 1
        # Each worker serves its metrics on a port of its own: several share this machine. A worker restarted in its
        # slot keeps its instance id, as a container restarted in its pod keeps the pod's name: on librdkafka its
        # transactional id, so it aborts what the killed one left open at once (aiokafka's settings have none).
        env = self.env | {
            "METRICS_PORT": str(kafka_stack.free_port()),
            "KAFKA_INSTANCE_ID": instance_id(self.group, slot),
        }
        with (self.workdir / f"{self.group}-worker-{self.started}.log").open("wb") as out:
            self.procs[slot] = subprocess.Popen(
                self.command,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def kill(self, slot: int = 0) -> None:
        proc = self.procs[slot]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()

    def restart_exited(self) -> None:
        for slot, proc in list(self.procs.items()):
            if proc.poll() is not None:
                log(f"{self.group} worker {slot} exited with {proc.returncode}; restarting")
                self.crashes += 1
                self.start(slot)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()


async def committed_total(consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> int:
    return sum([(await consumer.committed(tp)) or 0 for tp in tps])


async def group_progress(bootstrap: str, groups: list[str], tps: list[TopicPartition]) -> dict[str, int]:
    """Each group's committed offsets summed over the input partitions."""
    progress = {}
    for group in groups:
        monitor = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
        await monitor.start()
        try:
            progress[group] = await committed_total(monitor, tps)
        finally:
            await monitor.stop()
    return progress


def read_with_librdkafka(bootstrap: str, topic: str, partitions: int) -> list[Any]:
    """The causation id of every record of `topic` as librdkafka sees them in read_committed: a second client, so
    a bug in one client's transaction filtering cannot hide a bug in the processor."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"chaos-count-{uuid.uuid4().hex}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    consumer.assign([Partition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    causes: list[Any] = []
    at_end: set[Any] = set()
    deadline = time.monotonic() + 120
    try:
        while len(at_end) < partitions:
            if time.monotonic() > deadline:
                raise TimeoutError(f"librdkafka did not reach the end of {topic}")
            for message in consumer.consume(num_messages=5000, timeout=1.0):
                error = message.error()
                if error is not None and error.code() == KafkaError._PARTITION_EOF:
                    at_end.add(message.partition())
                elif error is not None:
                    raise RuntimeError(f"librdkafka: {error}")
                else:
                    at_end.discard(message.partition())
                    causes.append(dict(message.headers() or []).get("causation-id"))
    finally:
        consumer.close()
    return causes


def per_input(caused: list[Any], ids: set[bytes], copies: int) -> dict[str, int]:
    """Outputs caused by our inputs: `copies` each is right, more are duplicates, fewer are losses."""
    counts = Counter(c for c in caused if c in ids)
    return {
        "outputs": sum(counts.values()),
        "duplicates": sum(max(counts[i] - copies, 0) for i in ids),
        "lost": sum(max(copies - counts[i], 0) for i in ids),
    }


async def run_kills(args: dict[str, Any]) -> dict[str, Any]:
    """Inputs published as a backlog and then while the workers run; one or more groups of workers, members
    joining mid-stream, killed -9 `kills` times in all and restarted.

    The last tenth of the inputs is published only once every planned kill was done, so a fast machine cannot
    finish before its faults: a kill falls due at its share of the progress, or as soon as the workers have
    caught up with what was published so far."""
    project = Project(args["package"])
    bootstrap, n, kills, poison = args["bootstrap"], args["inputs"], args["kills"], args["poison"]
    groups = [args["group"]] if args.get("groups", 1) == 1 else [f"{args['group']}-{g}" for g in range(args["groups"])]
    members = args.get("members", 1)
    source = project.source
    output = project.catalog.topic_named(args["output"]) if args.get("output") else None
    workdir = Path(args["workdir"])
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    tps = await partitions(bootstrap, source.name, source.partitions)

    # Topics exist once the lifespan ran; an empty publish creates them.
    await project.publish([])
    start = await end_offsets(bootstrap, tps)
    for group in groups:
        await commit_group_at(bootstrap, group, start)
    base = sum(start.values())

    events = [project.samples.sample_event(source, key=f"chaos-{uuid.uuid4().hex[:12]}") for _ in range(n - poison)]
    ids = {str(e.event_id).encode() for e in events}
    held = events[len(events) - len(events) // 10 :] if kills else []
    flowing = events[: len(events) - len(held)]
    split = int(len(flowing) * args.get("backlog", 0.5))
    backlog, streamed = flowing[:split], flowing[split:]
    t0 = time.monotonic()
    await project.publish(backlog)
    poison_at: dict[bytes, tuple[int, int]] = {}
    if poison:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
        await producer.start()
        try:
            for i in range(poison):
                key = f"poison-{uuid.uuid4().hex[:12]}".encode()
                meta = await producer.send_and_wait(source.name, b"\x00 poison %d" % i, key=key)
                poison_at[key] = (meta.partition, meta.offset)
        finally:
            await producer.stop()
    published = len(backlog) + poison
    log(
        f"backlog of {published} on {source.name} in {time.monotonic() - t0:.1f} s; {len(streamed)} more arrive "
        f"while {len(groups)} group(s) of {members} worker(s) start, {len(held)} after {kills} kill(s)"
    )

    def acked() -> None:
        nonlocal published
        published += 1

    extra = {}
    if args.get("processed_db"):
        Path(args["processed_db"]).parent.mkdir(parents=True, exist_ok=True)  # the client's folder of the run
        extra["PROCESSED_EVENTS_PATH"] = args["processed_db"]
    command = None
    if args.get("slow_handler_ms"):
        command, more = await slow_workers(project.package, args, groups)
        extra |= more
    fleets = [Workers(project.package, group, workdir, extra, command) for group in groups]
    slots = [(fleet, slot) for slot in range(members) for fleet in fleets]
    done_kills = 0
    joined = 1
    stalled = False
    arriving = asyncio.create_task(project.publish(streamed, concurrency=50, on_ack=acked))
    t1 = last_move = time.monotonic()
    last_progress = -1
    try:
        for fleet in fleets:
            fleet.start(0)
        while True:
            progress = min((await group_progress(bootstrap, groups, tps)).values()) - base
            caught_up = progress >= published
            if progress >= n:
                break
            if joined < members and (caught_up or progress >= joined * n / (members + 1)):
                for fleet in fleets:
                    fleet.start(joined)
                log(f"worker {joined} joins each group at {progress}/{n} committed")
                joined += 1
            elif done_kills < kills and (caught_up or progress >= (done_kills + 1) * (n - len(held)) / (kills + 1)):
                fleet, slot = slots[done_kills % len(slots)]
                if slot < joined:
                    fleet.kill(slot)
                    done_kills += 1
                    log(f"kill -9 #{done_kills} ({fleet.group} worker {slot}) at {progress}/{n} committed; restarting")
                    fleet.start(slot)
                    if done_kills == kills:
                        await arriving
                        await project.publish(held, on_ack=acked)
                        log(f"the last {len(held)} inputs published")
            for fleet in fleets:
                fleet.restart_exited()
            if progress != last_progress:
                last_progress, last_move = progress, time.monotonic()
            elif time.monotonic() - last_move > args.get("stall_seconds", 90):
                stalled = True
                log(f"stalled at {progress}/{n}")
                break
            await asyncio.sleep(0.2)
        # At-most-once commits a batch before handling it: give the last batch time to be handled.
        await asyncio.sleep(args.get("drain_seconds", 0))
    finally:
        await arriving
        for fleet in fleets:
            await asyncio.to_thread(fleet.stop)
    processing = time.monotonic() - t1

    result: dict[str, Any] = {"inputs": n, "kills": done_kills, "stalled": stalled, "seconds": round(processing, 1)}
    # A worker that exits on its own is a fault nobody planned: it would hide a member that never joined.
    result["crashes"] = sum(fleet.crashes for fleet in fleets)
    if len(groups) > 1 or members > 1:
        result["groups"] = len(groups)
        result["members"] = members
    if output is not None:
        caused = [
            dict(r.headers).get("causation-id") for r in await read_all(bootstrap, output.name, output.partitions)
        ]
        result |= per_input(caused, ids, len(groups))
        second = await asyncio.to_thread(read_with_librdkafka, bootstrap, output.name, output.partitions)
        result["librdkafka"] = per_input(second, ids, len(groups))
    if args.get("processed_db"):
        db = sqlite3.connect(args["processed_db"])
        rows = {row[0].encode() for row in db.execute("SELECT event_id FROM processed")}
        result["effects"] = len(rows & ids)
    if args.get("slow_handler_ms"):
        result |= {"slow_handler_ms": args["slow_handler_ms"], "concurrency": args.get("concurrency", 1)}
    if args.get("processed_url"):
        result |= await side_effects(args["processed_url"], groups, ids)
    if poison:
        client = args.get("client", "aiokafka")
        letters = await asyncio.to_thread(counting.read, client, bootstrap, source.dead_letter, source.partitions)
        dead = [r for r in letters if r.key in poison_at]
        wrong = 0
        for record in dead:
            h = record.headers
            partition, offset = poison_at[record.key]
            expected = {
                "dlq.original.topic": source.name.encode(),
                "dlq.original.partition": str(partition).encode(),
                "dlq.original.offset": str(offset).encode(),
                "dlq.error.type": b"DeserializationError",
            }
            if (
                any(h.get(k) != v for k, v in expected.items())
                or "dlq.attempts" not in h
                or not h.get("dlq.error.message")
            ):
                wrong += 1
        result |= {"dead_letters": len(dead), "distinct_dead": len({r.key for r in dead}), "bad_headers": wrong}
    return result


# --- slow handlers: the chaos tool's own worker wrapper, side effects in the shared store's database ---------

SLOW_WORKER = Path(__file__).resolve().parent / "slow_worker.py"


async def slow_workers(package: str, args: dict[str, Any], groups: list[str]) -> tuple[list[str], dict[str, str]]:
    """The command and environment of workers whose handler sleeps `slow_handler_ms`, `concurrency` per partition;
    with `processed_url`, the shared processed-id store, and a side effect recorded in the id's transaction."""
    env = {"CHAOS_HANDLER_MS": str(args["slow_handler_ms"]), "CONSUMER_CONCURRENCY": str(args.get("concurrency", 1))}
    if args.get("processed_url"):
        asyncpg = importlib.import_module("asyncpg")  # the at-least-once project's dependency
        env |= {"PROCESSED_EVENTS_URL": args["processed_url"], "CHAOS_SIDE_EFFECTS": "postgres"}
        connection = await asyncpg.connect(args["processed_url"])
        try:
            await connection.execute(
                "CREATE TABLE IF NOT EXISTS chaos_side_effects (consumer_group text NOT NULL, event_id uuid NOT NULL)"
            )
            await connection.execute("DELETE FROM chaos_side_effects WHERE consumer_group = ANY($1)", groups)
        finally:
            await connection.close()
    return [sys.executable, str(SLOW_WORKER), package], env


async def side_effects(url: str, groups: list[str], ids: set[bytes]) -> dict[str, int]:
    """Side effects recorded per input (one row per handling that committed): how many inputs have one, and how
    many rows are more than one per input and group."""
    asyncpg = importlib.import_module("asyncpg")
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch(
            "SELECT consumer_group, event_id::text AS id, count(*) AS n FROM chaos_side_effects "
            "WHERE consumer_group = ANY($1) GROUP BY 1, 2",
            groups,
        )
    finally:
        await connection.close()
    ours = [row for row in rows if row["id"].encode() in ids]
    return {
        "effects": len({row["id"] for row in ours}),
        "effect_duplicates": sum(row["n"] - 1 for row in ours),
    }


async def run_broker_restart(args: dict[str, Any]) -> dict[str, Any]:
    """Events published while the broker is stopped and started again: the idempotent producer's retries."""
    project = Project(args["package"])
    bootstrap, n = args["bootstrap"], args["inputs"]
    state_dir = Path(args["state_dir"])
    source = project.source
    events = [project.samples.sample_event(source, key=f"restart-{uuid.uuid4().hex[:12]}") for _ in range(n)]
    ids = {str(e.event_id).encode() for e in events}
    acked = 0
    a_third_acked = asyncio.Event()
    restarted = asyncio.Event()

    def on_ack() -> None:
        nonlocal acked
        acked += 1
        if acked >= n // 3:
            a_third_acked.set()

    async def restart_midway() -> None:
        await a_third_acked.wait()
        await asyncio.to_thread(kafka_stack.stop_piece, state_dir, "kafka")
        log(f"broker stopped at {acked}/{n} acknowledged")
        await asyncio.sleep(2)
        await asyncio.to_thread(kafka_stack.start_piece, state_dir, "kafka")
        log(f"broker started again at {acked}/{n} acknowledged")
        restarted.set()

    t0 = time.monotonic()
    restarter = asyncio.create_task(restart_midway())
    retries = await project.publish(events, on_ack=on_ack)
    await restarter
    seconds = time.monotonic() - t0
    client = args.get("client", "aiokafka")
    stored = [
        r.headers.get("event-id")
        for r in await asyncio.to_thread(counting.read, client, bootstrap, source.name, source.partitions)
    ]
    ours = [i for i in stored if i in ids]
    return {
        "inputs": n,
        "outputs": len(ours),
        "duplicates": len(ours) - len(set(ours)),
        "lost": len(ids) - len(set(ours)),
        "kills": 1 if restarted.is_set() else 0,
        "retries": retries,
        "seconds": round(seconds, 1),
    }


def main() -> None:
    args = json.loads(sys.argv[1])
    runners = {"kills": run_kills, "broker-restart": run_broker_restart}
    if args["kind"] in runners:
        result = asyncio.run(runners[args["kind"]](args))
    else:
        patterns: Any = importlib.import_module("patterns")  # beside this script, as sys.path[0] is
        kinds = {kind: run for part in patterns.parts("scenario").values() for kind, run in part.KINDS.items()}
        result = asyncio.run(kinds[args["kind"]](args, sys.modules[__name__]))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
