"""The "hostile records" chaos rows: records no well-behaved producer writes, on every partition of the consumed
topic between valid events, under a generated project's guarantee. Run with that project's own interpreter (cwd =
project), as scenario.py is:

    .venv/bin/python .../tools/chaos/hostile.py '{"kind": "hostile", ...}'

Valid events are published through the service's EventPublisher; the hostile records are written with librdkafka
(confluent-kafka), the dead letters counted by a client of the other kind than the service's (tools/chaos/counting.py);
the outputs are counted by aiokafka and by librdkafka.
Promises: every valid event processed (its output on the emitted topic), every hostile record dead-lettered with
its error headers (by the runner; in the patterns row by the consumers of the consumed topic a pattern adds too, its
"channels"), no worker exit, final lag 0. The patterns row also writes hostile records to each topic a pattern consumes
of its own, and finds them dead-lettered. What each pattern adds is its folder's hostile.py
(tools/chaos/patterns/<name>/hostile.py): `consumers(package)`, its own topics and groups by name;
`channels(package)`, its consumers of the consumed topic, their groups and dead-letter topics by name; `PROCESS`,
the service's command that runs those. Prints one JSON result line. `verdict` (stdlib only) is what run.py checks
the result with.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import struct
import sys
import time
import uuid
from pathlib import Path
from typing import Any

MAX_REQUEST_SIZE = 1_048_576
"""aiokafka's max_request_size: a hostile value just under it cannot be dead-lettered as it is with its headers."""


Headers = list[tuple[str, str | bytes | None]]


def kinds(valid_value: bytes) -> list[tuple[str, bytes | None, bytes | None, Headers]]:
    """(name, key, value, headers) of every record kind the runner cannot decode."""

    def key() -> bytes:
        return f"hostile-{uuid.uuid4().hex[:12]}".encode()

    garbage: Headers = [
        ("correlation-id", b"\xff\xfe"),
        ("event-id", b"\xc3\x28"),
        ("traceparent", b"\xff"),
        ("x", None),
    ]
    return [
        ("tombstone", key(), None, []),
        ("null key and value", None, None, []),
        ("empty value", key(), b"", []),
        ("no magic byte", key(), b"plain text", []),
        ("unknown schema id", key(), b"\x00" + struct.pack(">I", 2**31 - 1) + b"\x02", []),
        ("truncated body", key(), valid_value[: max(6, len(valid_value) // 2)], []),
        ("near the size limit", key(), b"\x00" + b"\x7f" * (MAX_REQUEST_SIZE - 300), []),
        ("headers not UTF-8 or null", key(), b"\x01\x02", garbage),
        ("no headers, null key", None, b"\x00\x00", []),
    ]


def verdict(r: dict[str, Any]) -> list[str]:
    """The broken promises of a hostile-records result."""
    broken = []
    if r["dead_letters"] != r["hostile"] or r["bad_headers"]:
        broken.append(f"{r['dead_letters']} of {r['hostile']} hostile records dead-lettered, {r['bad_headers']} bad")
    for client, counted in (("aiokafka", r), ("librdkafka", r["librdkafka"])):
        if counted["outputs"] != r["inputs"] or counted["lost"] or counted["duplicates"]:
            broken.append(f"{counted['outputs']} of {r['inputs']} valid events processed as {client} counts")
    if r["lag"]:
        broken.append(f"final lag {r['lag']}")
    for name, count in r.get("channels", {}).items():
        if count != r["hostile"]:
            broken.append(f"fan-out channel {name} dead-lettered {count} of {r['hostile']}")
    for name, (written, dead) in r.get("patterns", {}).items():
        if dead != written:
            broken.append(f"{name} consumer dead-lettered {dead} of {written}")
    return broken


def notes(r: dict[str, Any]) -> str:
    """The row's table notes."""
    said = [f"{r['hostile']} hostile records ({len(kinds(b''))} kinds x every partition), final lag {r['lag']}"]
    said += [f"{name} channel dead-lettered {count}" for name, count in r.get("channels", {}).items()]
    said += [f"{name} dead-lettered {dead} of {written}" for name, (written, dead) in r.get("patterns", {}).items()]
    return ", ".join(said)


def librdkafka(bootstrap: str, **extra: Any) -> Any:
    from confluent_kafka import Consumer

    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"chaos-hostile-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
            "fetch.max.bytes": 4 * MAX_REQUEST_SIZE,
        }
        | extra
    )


def read_topic(bootstrap: str, topic: str, partitions: int, within: float = 120) -> list[Any]:
    """Every committed message of `topic` up to its end, read by librdkafka."""
    from confluent_kafka import OFFSET_BEGINNING, KafkaError, TopicPartition

    consumer = librdkafka(bootstrap)
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    messages: list[Any] = []
    at_end: set[int] = set()
    deadline = time.monotonic() + within
    try:
        while len(at_end) < partitions:
            if time.monotonic() > deadline:
                raise TimeoutError(f"librdkafka did not reach the end of {topic}")
            for message in consumer.consume(num_messages=1000, timeout=1.0):
                error = message.error()
                if error is not None and error.code() == KafkaError._PARTITION_EOF:
                    at_end.add(message.partition())
                elif error is not None:
                    raise RuntimeError(f"librdkafka: {error}")
                else:
                    at_end.discard(message.partition())
                    messages.append(message)
    finally:
        consumer.close()
    return messages


def write_hostile(bootstrap: str, topic: str, partitions: int, valid_value: bytes) -> dict[tuple[int, int], str]:
    """Every kind on every partition; the kind written at each (partition, offset)."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "message.max.bytes": 2 * MAX_REQUEST_SIZE})
    written: dict[tuple[int, int], str] = {}
    failures: list[Any] = []
    for partition in range(partitions):
        for name, key, value, headers in kinds(valid_value):

            def delivered(error: Any, message: Any, name: str = name) -> None:
                if error is not None:
                    failures.append(error)
                else:
                    written[(message.partition(), message.offset())] = name

            producer.produce(
                topic, value=value, key=key, partition=partition, headers=list(headers), on_delivery=delivered
            )
    producer.flush(60)
    if failures or producer.flush(0):
        raise RuntimeError(f"hostile records not written: {failures}")
    return written


def dead_lettered(
    letters: list[dict[str, bytes]], topic: str, written: dict[tuple[int, int], str]
) -> tuple[set[Any], int]:
    """The hostile records a dead-letter topic's records (their headers: `letters`) stand for, and how many lack their
    error headers."""
    found: set[Any] = set()
    bad = 0
    for headers in letters:
        if headers.get("dlq.original.topic") != topic.encode():
            continue
        where = (int(headers["dlq.original.partition"]), int(headers["dlq.original.offset"]))
        if where not in written:
            continue
        found.add(where)
        if not headers.get("dlq.error.type") or not headers.get("dlq.error.message"):
            bad += 1
    return found, bad


async def run_hostile(args: dict[str, Any], scenario: Any, parts: list[Any]) -> dict[str, Any]:
    """The row; `scenario` is scenario.py, whose machinery (publishing, workers, offsets) it reuses, `parts` the
    hostile.py of each pattern whose consumers it checks too."""
    project = scenario.Project(args["package"])
    bootstrap, n, group = args["bootstrap"], args["inputs"], args["group"]
    source = project.source
    output = project.catalog.topic_named(args["output"])
    workdir = Path(args["workdir"])
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    tps = await scenario.partitions(bootstrap, source.name, source.partitions)
    await project.publish([])  # topics exist once the lifespan ran
    start = await scenario.end_offsets(bootstrap, tps)
    channels = {name: found for part in parts for name, found in part.channels(args["package"]).items()}
    for member in [group, *(channel_group for channel_group, _ in channels.values())]:
        await scenario.commit_group_at(bootstrap, member, start)

    events = [project.samples.sample_event(source, key=f"chaos-{uuid.uuid4().hex[:12]}") for _ in range(n)]
    ids = {str(e.event_id).encode() for e in events}
    await project.publish(events[: n // 2])
    first = next(iter(await asyncio.to_thread(read_topic, bootstrap, source.name, source.partitions)))
    written = await asyncio.to_thread(write_hostile, bootstrap, source.name, source.partitions, first.value())
    await project.publish(events[n // 2 :])
    ends = await scenario.end_offsets(bootstrap, tps)
    # The patterns' own consumers of their own topics.
    consumers = {name: found for part in parts for name, found in part.consumers(args["package"]).items()}
    watched = [(group, ends), *((member, ends) for member, _ in channels.values())]
    on_patterns: dict[str, dict[tuple[int, int], str]] = {}
    for name, (topic, member) in consumers.items():
        count = await asyncio.to_thread(topic_partitions, bootstrap, topic)
        on_patterns[name] = await asyncio.to_thread(write_hostile, bootstrap, topic, count, first.value())
        topic_tps = await scenario.partitions(bootstrap, topic, count)
        watched.append((member, await scenario.end_offsets(bootstrap, topic_tps)))
    scenario.log(f"{n} valid events and {len(written)} hostile records on {source.name}; starting the workers")

    fleets = [scenario.Workers(project.package, group, workdir, {})]
    for part in parts:
        if part.channels(args["package"]):
            command = [sys.executable, "-m", project.package, part.PROCESS]
            fleets.append(scenario.Workers(project.package, f"{group}-{part.PROCESS}", workdir, {}, command))
    t0 = last_move = time.monotonic()
    stalled, last = False, -1
    try:
        for fleet in fleets:
            fleet.start(0)
        while True:
            lag = await group_lag(bootstrap, watched)
            if lag == 0:
                break
            for fleet in fleets:
                fleet.restart_exited()
            if lag != last:
                last, last_move = lag, time.monotonic()
            elif time.monotonic() - last_move > args.get("stall_seconds", 90):
                stalled = True
                scenario.log(f"stalled with lag {lag}")
                break
            await asyncio.sleep(0.2)
    finally:
        for fleet in fleets:
            await asyncio.to_thread(fleet.stop)
    result: dict[str, Any] = {
        "inputs": n,
        "kills": 0,
        "stalled": stalled,
        "seconds": round(time.monotonic() - t0, 1),
        "crashes": sum(fleet.crashes for fleet in fleets),
        "hostile": len(written),
        "lag": await group_lag(bootstrap, watched),
    }
    # Counted by both clients, as the other rows count: aiokafka's and librdkafka's transaction filtering.
    caused = [
        dict(r.headers).get("causation-id") for r in await scenario.read_all(bootstrap, output.name, output.partitions)
    ]
    result |= scenario.per_input(caused, ids, 1)
    second = await asyncio.to_thread(read_topic, bootstrap, output.name, output.partitions)
    result["librdkafka"] = scenario.per_input([dict(m.headers() or []).get("causation-id") for m in second], ids, 1)
    # The dead letters the service wrote, counted by a client of the other kind than its own.
    client = args.get("client", "aiokafka")
    found, bad = dead_lettered(await letters(client, bootstrap, source.dead_letter), source.name, written)
    result |= {"dead_letters": len(found), "bad_headers": bad}
    if channels:
        result["channels"] = {}
        for name, (_, dead_letter) in channels.items():
            seen = await letters(client, bootstrap, dead_letter)
            result["channels"][name] = len(dead_lettered(seen, source.name, written)[0])
    if consumers:
        result["patterns"] = await pattern_dead_letters(client, bootstrap, consumers, on_patterns)
    return result


async def letters(client: str, bootstrap: str, topic: str) -> list[dict[str, bytes]]:
    """The headers of every record of `topic`, read by the other client than `client` (tools/chaos/counting.py)."""
    counting: Any = importlib.import_module("counting")  # beside this script, in the project's interpreter
    partitions = await asyncio.to_thread(topic_partitions, bootstrap, topic)
    return [seen.headers for seen in await asyncio.to_thread(counting.read, client, bootstrap, topic, partitions)]


async def pattern_dead_letters(
    client: str,
    bootstrap: str,
    consumers: dict[str, tuple[str, str]],
    written: dict[str, dict[tuple[int, int], str]],
) -> dict[str, list[int]]:
    """For each pattern consumer: [hostile records written to its topic, dead letters found for them on any
    `.dlq` topic] (where a pattern dead-letters is its own choice)."""
    from confluent_kafka.admin import AdminClient

    metadata = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10)
    dlqs = [name for name in metadata.topics if name.endswith(".dlq")]
    seen = [headers for name in dlqs for headers in await letters(client, bootstrap, name)]
    return {
        name: [len(written[name]), len(dead_lettered(seen, topic, written[name])[0])]
        for name, (topic, _) in consumers.items()
    }


async def group_lag(bootstrap: str, watched: list[tuple[str, dict[Any, int]]]) -> int:
    """What each group has not committed yet of its input up to the ends given with it, summed."""
    from aiokafka import AIOKafkaConsumer

    lag = 0
    for group, ends in watched:
        monitor = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
        await monitor.start()
        try:
            for tp, end in ends.items():
                lag += max(end - ((await monitor.committed(tp)) or 0), 0)
        finally:
            await monitor.stop()
    return lag


def topic_partitions(bootstrap: str, topic: str) -> int:
    from confluent_kafka.admin import AdminClient

    return len(AdminClient({"bootstrap.servers": bootstrap}).list_topics(topic, timeout=10).topics[topic].partitions)


def main() -> None:
    args = json.loads(sys.argv[1])
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    scenario = importlib.import_module("scenario")  # in the project's interpreter and cwd, as run.py starts it
    patterns: Any = importlib.import_module("patterns")
    parts = [part for name, part in patterns.parts("hostile").items() if name in args.get("patterns", [])]
    print(json.dumps(asyncio.run(run_hostile(args, scenario, parts))), flush=True)


if __name__ == "__main__":
    main()
