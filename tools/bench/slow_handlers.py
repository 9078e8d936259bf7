"""Events per second of one worker whose handler takes 100 ms (an I/O-bound call, as to a language model), at
several `CONSUMER_CONCURRENCY` values: the speed-up key-ordered concurrency gives a user.

    python -m tools.bench.slow_handlers [--events 3000] [--handler-ms 100] [--concurrency 1,4,16,64]

Renders the default variant (at-least-once), starts a local stack of its own (or uses KAFKA_BOOTSTRAP_SERVERS and
SCHEMA_REGISTRY_URL when both are set), publishes a backlog of events with distinct keys, then runs the service's
real consumer once per concurrency on a fresh consumer group, each handler call sleeping `--handler-ms`, and
prints a table. The project's own interpreter runs the measuring half (`--inside`).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any


def outside(args: argparse.Namespace) -> int:
    from tools.render import REPO, render, variant_answers

    root = Path(tempfile.mkdtemp(prefix="bench-"))
    project = render(variant_answers("default"), root / "project")
    subprocess.run(["uv", "sync", "-q"], cwd=project, check=True)
    stack = [sys.executable, str(REPO / "template" / "scripts" / "kafka_stack.py"), "--state-dir", str(root / "st")]
    wanted = ("KAFKA_BOOTSTRAP_SERVERS", "SCHEMA_REGISTRY_URL")
    started = not all(os.environ.get(name) for name in wanted)
    try:
        env = dict(os.environ)
        if started:
            up = subprocess.run([*stack, "up", "--with", "registry"], stdout=subprocess.PIPE, text=True, check=True)
            env |= dict(line.split("=", 1) for line in up.stdout.split())
        inside = [str(project / ".venv" / "bin" / "python"), str(Path(__file__).resolve()), "--inside"]
        options = [
            "--events",
            str(args.events),
            "--handler-ms",
            str(args.handler_ms),
            "--concurrency",
            args.concurrency,
        ]
        result = subprocess.run([*inside, *options], cwd=project, env=env, stdout=subprocess.PIPE, text=True)
        if result.returncode != 0:
            return result.returncode
        rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
        print(table(rows, args.handler_ms))
        return 0
    finally:
        if started:
            subprocess.run([*stack, "down"], check=False, stdout=subprocess.DEVNULL)
        subprocess.run(["rm", "-rf", str(root)], check=False)


def table(rows: list[dict[str, Any]], handler_ms: int) -> str:
    base = rows[0]["events_per_second"] if rows else 1.0
    lines = [
        f"one worker, {rows[0]['partitions'] if rows else '?'} partitions, handler {handler_ms} ms, "
        f"{rows[0]['events'] if rows else '?'} events with distinct keys",
        "",
        "| CONSUMER_CONCURRENCY | events/s | speed-up | seconds |",
        "| ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        lines.append(
            f"| {row['concurrency']} | {row['events_per_second']:.0f} | {row['events_per_second'] / base:.1f}x "
            f"| {row['seconds']:.1f} |"
        )
    return "\n".join(lines)


async def inside(args: argparse.Namespace) -> None:
    sys.path.insert(0, os.getcwd())  # the project's tests.samples builds valid events of its spec
    answers = (Path.cwd() / ".copier-answers.yml").read_text()
    package = next(line.split(":", 1)[1].strip() for line in answers.splitlines() if line.startswith("package_name:"))
    app_module = importlib.import_module(f"{package}.app")
    main_module = importlib.import_module(f"{package}.main")
    delivery = importlib.import_module(f"{package}.kafka.runners")
    settings_module = importlib.import_module(f"{package}.settings")
    topic = importlib.import_module(f"{package}.events.catalog").CONSUMED_TOPICS[0]
    samples = importlib.import_module("tests.samples")
    from aiokafka import AIOKafkaConsumer, TopicPartition

    base = settings_module.Settings(consumer_enabled=False, log_level="WARNING")
    publisher_app = main_module.create_app(base)
    events = [samples.sample_event(topic, key=f"bench-{uuid.uuid4().hex}") for _ in range(args.events)]
    async with publisher_app.router.lifespan_context(publisher_app):
        probe = AIOKafkaConsumer(bootstrap_servers=base.kafka_bootstrap_servers)
        await probe.start()
        tps = [TopicPartition(topic.name, p) for p in range(topic.partitions)]
        start = await probe.end_offsets(tps)
        await probe.stop()
        gate = asyncio.Semaphore(200)

        async def publish(event: Any) -> None:
            async with gate:
                await publisher_app.state.publisher.publish(event)

        await asyncio.gather(*(publish(event) for event in events))

    for concurrency in [int(n) for n in args.concurrency.split(",")]:
        seconds = await measure(app_module, delivery, base, tps, start, concurrency, events, args.handler_ms)
        row = {"concurrency": concurrency, "events": len(events), "partitions": topic.partitions, "seconds": seconds}
        print(json.dumps(row | {"events_per_second": len(events) / seconds}), flush=True)


async def measure(
    app_module: Any,
    delivery: Any,
    base: Any,
    tps: list[Any],
    start: dict[Any, int],
    concurrency: int,
    events: list[Any],
    handler_ms: int,
) -> float:
    """Seconds from the first of `events` reaching the handler to the last one handled, on a fresh group."""
    from aiokafka import AIOKafkaConsumer

    group = f"bench-{concurrency}-{uuid.uuid4().hex[:8]}"
    # The group starts where this run's backlog starts.
    committer = AIOKafkaConsumer(
        bootstrap_servers=base.kafka_bootstrap_servers, group_id=group, enable_auto_commit=False
    )
    await committer.start()
    committer.assign(tps)
    await committer.commit(start)
    await committer.stop()
    ours = {event.event_id for event in events}
    handled = 0
    done = asyncio.Event()
    first: list[float] = []

    def slow(handler: Any) -> Any:
        async def handle(t: Any, event: Any) -> Any:
            nonlocal handled
            if event.event_id not in ours:
                return await handler(t, event)
            if not first:
                first.append(time.monotonic())
            await asyncio.sleep(handler_ms / 1000)
            emitted = await handler(t, event)
            handled += 1
            if handled == len(events):
                done.set()
            return emitted

        return handle

    create_runner = delivery.create_runner
    app_module.create_runner = lambda s, serde, h, p, hooks: create_runner(s, serde, slow(h), p, hooks)
    settings = base.model_copy(
        update={"consumer_enabled": True, "kafka_consumer_group": group, "consumer_concurrency": concurrency}
    )
    app = importlib.import_module(f"{app_module.__package__}.main").create_app(settings)
    try:
        async with app.router.lifespan_context(app):
            await asyncio.wait_for(done.wait(), timeout=600)
            return time.monotonic() - first[0]
    finally:
        app_module.create_runner = create_runner


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--handler-ms", type=int, default=100)
    parser.add_argument("--concurrency", default="1,4,16,64")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.inside:
        asyncio.run(inside(args))
        return 0
    return outside(args)


if __name__ == "__main__":
    sys.exit(main())
