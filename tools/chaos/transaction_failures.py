"""The "transaction failures" chaos row, run with the exactly-once project's own interpreter (cwd = project):

    .venv/bin/python .../tools/chaos/transaction_failures.py '{"inputs": 10000, "fences": 20, ...}'

On a stack of its own with three brokers (topics replicated three times), `inputs` events reach an exactly-once
worker in `2 * fences` chunks. While every other chunk is being processed, a zombie (a confluent-kafka producer
initialised with the worker's own transactional ids: one per input partition on aiokafka, the process's one on
librdkafka, its instance id set by the row) fences the worker's producers: their open transactions abort (or, had
the worker taken the whole chunk already, its next one fails), and the worker must read each partition again from its
committed offset. Halfway, the broker leading an output partition is stopped until that partition has a new leader
and the worker committed more, then started again. Every fault waits for a condition (outputs committed since the
last one), never for a fixed time, and every planned fault happens.

Counted afterwards by aiokafka and by librdkafka in read_committed: one output per input, none lost, none twice;
the group's lag on the input is 0. Prints one JSON result line.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

# The scenario helpers run in the generated project's interpreter too: imported by name, beside this file.
scenario: Any = importlib.import_module("scenario")

NODES = {1: "kafka", 2: "kafka-2", 3: "kafka-3"}
"""The launcher's piece name of each node id of `up --brokers 3`."""


def fence(bootstrap: str, transactional_ids: list[str]) -> None:
    """A zombie of the worker: initialising a producer with each of its transactional ids fences the worker's
    producer of that id and aborts its open transaction."""
    for transactional_id in transactional_ids:
        zombie = Producer({"bootstrap.servers": bootstrap, "transactional.id": transactional_id, "log_level": 2})
        zombie.init_transactions(60)


def leader_of(bootstrap: str, topic: str, partition: int) -> int:
    metadata = AdminClient({"bootstrap.servers": bootstrap, "log_level": 2}).list_topics(topic, timeout=30)
    return int(metadata.topics[topic].partitions[partition].leader)


def aborted_transactions(workdir: Path, group: str) -> int:
    """Transactions the worker reports failed (and aborted or fenced), from its logs."""
    return sum(
        path.read_text(errors="replace").count("resuming from the committed offset")
        for path in workdir.glob(f"{group}-worker-*.log")
    )


class Row:
    def __init__(self, args: dict[str, Any], bootstrap: str) -> None:
        self.args = args
        self.bootstrap = bootstrap
        self.project = scenario.Project(args["package"])
        self.group = args["group"]
        self.source = self.project.source
        self.output = self.project.catalog.topic_named(args["output"])
        self.published = 0
        self.stalled = False
        self.last_move = time.monotonic()
        self.last_progress = -1
        self.fleet: Any = None
        self.tps: list[Any] = []
        self.base = 0

    def acked(self) -> None:
        self.published += 1

    async def progress(self) -> int:
        committed: dict[str, int] = await scenario.group_progress(self.bootstrap, [self.group], self.tps)
        return committed[self.group] - self.base

    async def wait_for_progress(self, at_least: int, what: str) -> int:
        """Until the group committed `at_least` inputs (restarting a worker that exited, noting a stall)."""
        while True:
            progress = await self.progress()
            if progress >= at_least:
                return progress
            assert self.fleet is not None
            self.fleet.restart_exited()
            if progress != self.last_progress:
                self.last_progress, self.last_move = progress, time.monotonic()
            elif time.monotonic() - self.last_move > self.args.get("stall_seconds", 120):
                self.stalled = True
                raise TimeoutError(f"stalled at {progress} committed, waiting for {what}")
            await asyncio.sleep(0.1)

    async def run(self) -> dict[str, Any]:
        n, fences = self.args["inputs"], self.args["fences"]
        workdir = Path(self.args["workdir"])
        await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
        self.tps = await scenario.partitions(self.bootstrap, self.source.name, self.source.partitions)
        await self.project.publish([])  # the topics, replicated three times
        start = await scenario.end_offsets(self.bootstrap, self.tps)
        await scenario.commit_group_at(self.bootstrap, self.group, start)
        self.base = sum(start.values())
        ids, worker_env = self.transactional_ids()

        events = [self.project.samples.sample_event(self.source, key=f"txn-{uuid.uuid4().hex[:12]}") for _ in range(n)]
        causes = {str(e.event_id).encode() for e in events}
        # Twice as many chunks as fences: every other chunk is fenced, and the chunk after it makes the fenced
        # producers' successors commit (a fence that lands between two transactions fails the next one instead).
        count = 2 * fences
        chunks = [events[i * n // count : (i + 1) * n // count] for i in range(count)]
        self.fleet = scenario.Workers(
            self.project.package, self.group, workdir, {"KAFKA_TOPIC_REPLICATION_FACTOR": "3"} | worker_env
        )
        done = 0
        leader: dict[str, Any] = {"lost": False, "node": None}
        t0 = time.monotonic()
        try:
            self.fleet.start(0)
            for index, chunk in enumerate(chunks):
                if index == count // 2:
                    leader = await self.stop_a_leader(n)
                before = await self.progress()
                arriving = asyncio.create_task(self.project.publish(chunk, concurrency=50, on_ack=self.acked))
                # As soon as the worker committed some of this chunk: mid-batch while the rest is still arriving,
                # whatever the machine's speed; or, if it already took the whole chunk, its next transaction fails.
                progress = await self.wait_for_progress(before + 1, f"chunk {index}")
                if index % 2 == 0:
                    await asyncio.to_thread(fence, self.bootstrap, ids)
                    done += 1
                    scenario.log(
                        f"fence #{done} ({len(ids)} producers) at {progress}/{n} committed ({self.published} published)"
                    )
                await arriving
                if leader.get("node") is not None and not leader["lost"]:
                    leader = await self.start_the_leader(leader)
            await self.wait_for_progress(n, "every input")
        except TimeoutError as stall:
            scenario.log(str(stall))
        finally:
            await asyncio.to_thread(self.fleet.stop)
        seconds = time.monotonic() - t0
        ends = await scenario.end_offsets(self.bootstrap, self.tps)
        committed = await scenario.group_progress(self.bootstrap, [self.group], self.tps)
        result: dict[str, Any] = {
            "inputs": n,
            "kills": done,
            "fences": done,
            "planned_fences": fences,
            "producer_fences": done * len(ids),
            "aborted": aborted_transactions(workdir, self.group),
            "leader_lost": leader["lost"],
            "leader_down_s": leader.get("down_s"),
            "final_lag": sum(ends.values()) - committed[self.group],
            "stalled": self.stalled,
            "crashes": self.fleet.crashes,
            "seconds": round(seconds, 1),
        }
        caused = [
            dict(r.headers).get("causation-id")
            for r in await scenario.read_all(self.bootstrap, self.output.name, self.output.partitions)
        ]
        result |= scenario.per_input(caused, causes, 1)
        second = await asyncio.to_thread(
            scenario.read_with_librdkafka, self.bootstrap, self.output.name, self.output.partitions
        )
        result["librdkafka"] = scenario.per_input(second, causes, 1)
        return result

    def transactional_ids(self) -> tuple[list[str], dict[str, str]]:
        """The worker's transactional ids, and what its environment needs for them to be these."""
        package = self.project.package
        if self.args.get("client") == "confluent-kafka":
            # One producer per process (KIP-447), named by the process's instance id: the one its slot gets.
            instance = scenario.instance_id(self.group, 0)
            settings = self.project.settings.Settings(kafka_consumer_group=self.group, kafka_instance_id=instance)
            adapter = importlib.import_module(f"{package}.kafka.confluent_client")
            return [adapter.transactional_id(settings)], {}
        # aiokafka: one producer per input partition, each fenced by a transactional id of its own.
        settings = self.project.settings.Settings(kafka_consumer_group=self.group)
        adapter = importlib.import_module(f"{package}.kafka.aiokafka_client")
        return [adapter.transactional_id(settings, tp) for tp in self.tps], {}

    async def stop_a_leader(self, n: int) -> dict[str, Any]:
        """Stop the broker leading output partition 0, and wait until the partition has another leader: the next
        chunk is processed, and fenced, without it."""
        node = await asyncio.to_thread(leader_of, self.bootstrap, self.output.name, 0)
        stopped = time.monotonic()
        await asyncio.to_thread(scenario.kafka_stack.stop_piece, Path(self.args["state_dir"]), NODES[node])
        new = node
        while new in (node, -1):  # metadata, not an event: asked again until the election shows
            new = await asyncio.to_thread(leader_of, self.bootstrap, self.output.name, 0)
        scenario.log(
            f"broker {node}, leader of {self.output.name}[0], stopped at {await self.progress()}/{n}; now {new}"
        )
        return {"lost": False, "node": node, "stopped": stopped}

    async def start_the_leader(self, leader: dict[str, Any]) -> dict[str, Any]:
        await asyncio.to_thread(scenario.kafka_stack.start_piece, Path(self.args["state_dir"]), NODES[leader["node"]])
        down = round(time.monotonic() - leader["stopped"], 1)
        scenario.log(f"broker {leader['node']} started again after {down} s")
        return {"lost": True, "node": leader["node"], "down_s": down}


async def main(args: dict[str, Any]) -> dict[str, Any]:
    state_dir = Path(args["state_dir"])
    settings = await asyncio.to_thread(scenario.kafka_stack.up, state_dir, ["registry"], brokers=3)
    try:
        os.environ.update(settings | {"KAFKA_TOPIC_REPLICATION_FACTOR": "3"})
        return await Row(args, settings["KAFKA_BOOTSTRAP_SERVERS"]).run()
    finally:
        await asyncio.to_thread(scenario.kafka_stack.down, state_dir)


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(json.loads(sys.argv[1])))), flush=True)
