"""The "scaling" chaos row: workers scaled 1 -> 3 -> 1 under handlers as slow as a language model's call, run with the
at-least-once project's own interpreter (cwd = project), as scenario.py is:

    .venv/bin/python .../tools/chaos/scaling.py '{"kind": "scaling", "client": "aiokafka", ...}'

Events flow at three quarters of what the partitions can handle (CONSUMER_CONCURRENCY calls of `handler_seconds` at
once per partition) from the first worker's start until the last step has settled. Each step waits for conditions,
never for a fixed time: the group is seen settled (describe, by librdkafka's admin client: the expected members,
every partition assigned once, no assignment pending) and every partition has a handler call in flight on its
owner; then two workers start (1 -> 3), or the two added ones get SIGTERM as Kubernetes stops a pod (3 -> 1).

Counted from the handlers' own durable record (tools/chaos/slow_worker.py's journal: a line as each call starts,
finishes or is cancelled), per step and per partition class (unmoved: the same worker owns it before and after the
step; moved: the others): handler calls ABANDONED (started, cancelled before they finished: the runner gives up after
CONSUMER_REVOKE_WAIT_SECONDS on a revoke, SHUTDOWN_TIMEOUT_SECONDS on a stop), events RE-RUN (a handler call started
again), and the longest GAP on a partition during the rebalance (from the step until every partition has a call in
flight again): a time when none of the partition's calls in flight was one that went on to finish (an abandoned call
is work thrown away) while one of its events waited for the call that finished it. No event lost: every
event has a finished call, and the group's committed offsets reach the topic's end, read by a client of the other
kind than the service's. Prints one JSON result line.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import signal
import sys
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from confluent_kafka import ConsumerGroupState
from confluent_kafka.admin import AdminClient

# The scenario helpers run in the generated project's interpreter too: imported by name, beside this file.
scenario: Any = importlib.import_module("scenario")
counting: Any = importlib.import_module("counting")

STEPS = ((1, 3), (3, 1))
"""Members before and after each step."""


@dataclass
class Call:
    worker: str
    event: str
    start: float
    end: float | None = None
    finished: bool = False


@dataclass
class Journal:
    """What the handlers wrote: every call, by event."""

    folder: Path
    calls: dict[str, list[Call]] = field(default_factory=dict)

    def read(self) -> Journal:
        calls: dict[str, list[Call]] = defaultdict(list)
        for path in sorted(self.folder.glob("*.log")):
            open_calls: dict[str, Call] = {}
            for line in path.read_text().splitlines():
                parts = line.split()
                if len(parts) != 4:
                    continue  # a line cut short (none is, but a reader must not trip on one)
                what, at, event, worker = parts[0], float(parts[1]), parts[2], parts[3]
                if what == "start":
                    open_calls[event] = call = Call(worker, event, at)
                    calls[event].append(call)
                elif event in open_calls:
                    call = open_calls.pop(event)
                    call.end, call.finished = at, what == "finish"
        self.calls = {event: sorted(found, key=lambda c: c.start) for event, found in calls.items()}
        return self

    def in_flight(self) -> list[Call]:
        return [call for found in self.calls.values() for call in found if call.end is None]

    def finished(self) -> set[str]:
        return {event for event, found in self.calls.items() if any(call.finished for call in found)}


class Group:
    """The group as the broker describes it, asked with librdkafka's admin client (either protocol)."""

    def __init__(self, bootstrap: str, group: str, partitions: int) -> None:
        self.admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 2})
        self.group = group
        self.partitions = partitions

    def owners(self) -> dict[int, str] | None:
        """Each partition's member (its client id, one per worker) once the group is settled, else None."""
        try:
            described = self.admin.describe_consumer_groups([self.group])[self.group].result(timeout=10)
        except Exception:  # a coordinator moving or loading: asked again
            return None
        if described.state != ConsumerGroupState.STABLE:
            return None
        owners: dict[int, str] = {}
        for member in described.members:
            current = {tp.partition for tp in member.assignment.topic_partitions}
            target = member.target_assignment
            if target is not None and {tp.partition for tp in target.topic_partitions} != current:
                return None  # the cooperative protocol: an assignment still on its way
            for partition in current:
                if partition in owners:
                    return None
                owners[partition] = member.client_id
        return owners if len(owners) == self.partitions else None


class Row:
    def __init__(self, args: dict[str, Any]) -> None:
        self.args = args
        self.project = scenario.Project(args["package"])
        self.source = self.project.source
        self.bootstrap = args["bootstrap"]
        self.group_name = args["group"]
        self.group = Group(self.bootstrap, self.group_name, self.source.partitions)
        self.handler_seconds = float(args.get("handler_seconds", 30))
        self.concurrency = int(args.get("concurrency", 8))
        self.workdir = Path(args["workdir"])
        self.journal = Journal(self.workdir / "journal")
        self.partition_of: dict[str, int] = {}
        self.acked_at: dict[str, float] = {}
        self.flowing = True
        self.stall_seconds = float(args.get("stall_seconds", 240))

    async def flow(self) -> None:
        """Events at three quarters of the partitions' capacity, each acknowledged (its partition noted) before
        the next is due, until told to stop."""
        rate = 0.75 * self.source.partitions * self.concurrency / self.handler_seconds
        settings = self.project.settings.Settings(
            consumer_enabled=False, publish_timeout_seconds=60.0, log_level="CRITICAL"
        )
        app = self.project.main.create_app(settings)
        async with app.router.lifespan_context(app):
            due = time.monotonic()
            while self.flowing:
                event = self.project.samples.sample_event(self.source, key=f"scale-{uuid.uuid4().hex[:12]}")
                while True:
                    try:
                        published = await app.state.publisher.publish(event)
                    except Exception as error:  # PublishError, registry hiccups: the same event again
                        scenario.log(f"publish retried after {type(error).__name__}")
                        await asyncio.sleep(0.5)
                    else:
                        break
                self.partition_of[str(event.event_id)] = published.partition
                self.acked_at[str(event.event_id)] = time.time()
                due += 1 / rate
                await asyncio.sleep(max(due - time.monotonic(), 0))

    async def until(self, what: str, check: Any) -> Any:
        """`check()` until it returns something; a stall (nothing for `stall_seconds`) fails the row."""
        deadline = time.monotonic() + self.stall_seconds
        while time.monotonic() < deadline:
            found = await check()
            if found:
                return found
            await asyncio.sleep(0.2)
        raise TimeoutError(f"no {what} within {self.stall_seconds:.0f} s")

    async def settled(self, members: int) -> dict[int, str]:
        async def check() -> dict[int, str] | None:
            owners = await asyncio.to_thread(self.group.owners)
            return owners if owners is not None and len(set(owners.values())) == members else None

        owners: dict[int, str] = await self.until(f"group of {members} settled", check)
        return owners

    async def working(self, owners: dict[int, str]) -> float:
        """Until every partition has a handler call in flight on its owner; when that was seen."""

        async def check() -> bool:
            calls = (await asyncio.to_thread(self.journal.read)).in_flight()
            busy = {(self.partition_of.get(call.event), call.worker) for call in calls}
            return all((partition, worker) in busy for partition, worker in owners.items())

        await self.until("handler call in flight on every partition", check)
        return time.time()

    async def run(self) -> dict[str, Any]:
        await asyncio.to_thread(self.journal.folder.mkdir, parents=True, exist_ok=True)
        tps = await scenario.partitions(self.bootstrap, self.source.name, self.source.partitions)
        await self.project.publish([])  # the topics
        start = await scenario.end_offsets(self.bootstrap, tps)
        await scenario.commit_group_at(self.bootstrap, self.group_name, start)
        env = {
            "CHAOS_HANDLER_MS": str(int(self.handler_seconds * 1000)),
            "CONSUMER_CONCURRENCY": str(self.concurrency),
            "CHAOS_JOURNAL": str(self.journal.folder),
            "PROCESSED_EVENTS_PATH": str(self.workdir / "processed.sqlite"),
        }
        fleet = Fleet(self.project.package, self.group_name, self.workdir, env, self.args["client"])
        flowing = asyncio.create_task(self.flow())
        steps: list[dict[str, Any]] = []
        stalled = ""
        t0 = time.monotonic()
        try:
            fleet.start(0)
            owners = await self.settled(1)
            ready = await self.working(owners)
            scenario.log(f"1 worker owns {len(owners)} partitions, a call in flight on each")
            for before, after in STEPS:
                at = time.time()
                if after > before:
                    for slot in range(before, after):
                        fleet.start(slot)
                else:
                    await asyncio.to_thread(fleet.terminate, list(range(after, before)))
                new = await self.settled(after)
                settled = time.time()
                ready = await self.working(new)
                unmoved = sorted(p for p, worker in new.items() if owners[p] == worker)
                scenario.log(f"{before} -> {after} workers: settled in {settled - at:.1f} s, unmoved {unmoved}")
                steps.append(
                    {"step": f"{before}->{after}", "at": at, "settled_s": round(settled - at, 1), "ready": ready}
                    | {"unmoved": unmoved}
                )
                owners = new
            self.flowing = False
            await flowing
            published = set(self.partition_of)
            scenario.log(f"{len(published)} events published; waiting until each has a finished handler call")

            async def all_finished() -> bool:
                return published <= (await asyncio.to_thread(self.journal.read)).finished()

            await self.until("finished call for every event", all_finished)
        except TimeoutError as stall:
            stalled = str(stall)
            scenario.log(stalled)
        finally:
            self.flowing = False
            await asyncio.gather(flowing, return_exceptions=True)
            await asyncio.to_thread(fleet.stop)
        self.journal.read()
        result: dict[str, Any] = {
            "inputs": len(self.partition_of),
            "kills": len(steps),
            "stalled": bool(stalled),
            "crashes": fleet.crashes,
            "seconds": round(time.monotonic() - t0, 1),
            "handler_seconds": self.handler_seconds,
            "concurrency": self.concurrency,
            "partitions": self.source.partitions,
            "lost": len(set(self.partition_of) - self.journal.finished()),
            "lag": await asyncio.to_thread(
                counting.lag, self.args["client"], self.bootstrap, self.group_name, self.source.name, start
            ),
            "counted_by": counting.OTHER[self.args["client"]],
            "steps": [self.figures(index, step, steps) for index, step in enumerate(steps)],
        }
        return result

    def figures(self, index: int, step: dict[str, Any], steps: list[dict[str, Any]]) -> dict[str, Any]:
        """Abandoned calls and re-runs from the step until the next one (or the end), by partition class; the
        longest gap during the rebalance (the step until a call is in flight on every partition again)."""
        begin = step["at"]
        end = steps[index + 1]["at"] if index + 1 < len(steps) else float("inf")
        unmoved = set(step["unmoved"])
        counts = {f"{what}_{kind}": 0 for what in ("abandoned", "rerun") for kind in ("unmoved", "moved")}
        for event, calls in self.journal.calls.items():
            kind = "unmoved" if self.partition_of.get(event) in unmoved else "moved"
            for call in calls:
                if not call.finished and call.end is not None and begin <= call.end < end:
                    counts[f"abandoned_{kind}"] += 1
            if any(begin <= call.start < end for call in calls[1:]):
                counts[f"rerun_{kind}"] += 1
        gaps = {p: self.longest_gap(p, begin, step["ready"]) for p in range(self.source.partitions)}
        return {
            "step": step["step"],
            "settled_s": step["settled_s"],
            "unmoved": step["unmoved"],
            **counts,
            "gap_unmoved_s": round(max((gaps[p] for p in unmoved), default=0.0), 1),
            "gap_moved_s": round(max((gaps[p] for p in gaps if p not in unmoved), default=0.0), 1),
        }

    def longest_gap(self, partition: int, begin: float, end: float) -> float:
        """The longest time within [begin, end] when no call of `partition` that went on to finish was in flight (an
        abandoned call is work thrown away) while one of its events waited (acknowledged, its finishing call not
        started yet)."""
        points: list[tuple[float, int, int]] = []  # (time, change of useful calls in flight, of events waiting)
        for event, calls in self.journal.calls.items():
            if self.partition_of.get(event) != partition:
                continue
            done = next((call for call in calls if call.finished), None)
            starts = done.start if done is not None else end
            points.append((self.acked_at[event], 0, 1))
            points.append((starts, 0, -1))
            if done is not None and done.end is not None:
                points += [(done.start, 1, 0), (done.end, -1, 0)]
        points.sort(key=lambda point: (point[0], -point[1]))  # a call starting as its wait ends: no gap between
        running = waiting = 0
        longest = 0.0
        since: float | None = None
        for at, change, waits in points:
            running += change
            waiting += waits
            idle = running == 0 and waiting > 0
            if idle and since is None:
                since = at
            elif not idle and since is not None:
                longest = max(longest, min(at, end) - max(since, begin))
                since = None
        if since is not None:
            longest = max(longest, end - max(since, begin))
        return longest


class Fleet(scenario.Workers):  # type: ignore[misc]
    """The row's workers, each named (its client id and its journal's) by its slot."""

    env: dict[str, str]

    def __init__(self, package: str, group: str, workdir: Path, env: dict[str, str], client: str) -> None:
        command = [sys.executable, str(scenario.SLOW_WORKER), package]
        super().__init__(package, group, workdir, env, command)
        self.client = client

    def start(self, slot: int = 0) -> None:
        name = f"worker-{slot}"
        self.env = self.env | {"KAFKA_CLIENT_ID": name, "CHAOS_WORKER": name}
        super().start(slot)

    def terminate(self, slots: list[int]) -> None:
        """SIGTERM, as Kubernetes stops a pod, and wait until each has exited (it settles first)."""
        for slot in slots:
            self.procs[slot].send_signal(signal.SIGTERM)
        for slot in slots:
            self.procs.pop(slot).wait()


def main() -> None:
    args = json.loads(sys.argv[1])
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    print(json.dumps(asyncio.run(Row(args).run())), flush=True)


if __name__ == "__main__":
    main()
