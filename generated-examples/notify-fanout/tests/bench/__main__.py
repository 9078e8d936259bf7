"""`python -m tests.bench`: every row of the bench, on the stack in the environment (KAFKA_BOOTSTRAP_SERVERS,
SCHEMA_REGISTRY_URL) or else on a stack of its own; prints a table, and writes the rows as JSON with --json."""

import argparse
import asyncio
import json
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from notify_fanout.events.catalog import CONSUMED_TOPICS, TOPICS
from notify_fanout.kafka.admin import ensure_topics
from notify_fanout.settings import Settings

from . import consumers, ingest, producer, serde, workers
from .measure import Row, table

STACK = Path(__file__).resolve().parents[2] / "scripts" / "kafka_stack.py"
ROWS = ["publish", "http", "consume", "serde", "http-clients", "workers"]


@contextmanager
def stack() -> Iterator[None]:
    """The stack in the environment, else one of the bench's own, stopped afterwards."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS") and os.environ.get("SCHEMA_REGISTRY_URL"):
        yield
        return
    with tempfile.TemporaryDirectory(prefix="bench-stack-") as state_dir:
        command = [sys.executable, str(STACK), "--state-dir", state_dir]
        up = subprocess.run([*command, "up", "--with", "registry"], stdout=subprocess.PIPE, text=True, check=True)
        os.environ.update(dict(line.split("=", 1) for line in up.stdout.split()))
        try:
            yield
        finally:
            subprocess.run([*command, "down"], check=False, stdout=subprocess.DEVNULL)


async def measure(args: argparse.Namespace, only: set[str]) -> list[Row]:
    settings = Settings(log_level="WARNING")
    await ensure_topics(settings)
    rows: list[Row] = []

    def step(name: str) -> bool:
        if name in only:
            print(f"measuring {name} ...", file=sys.stderr, flush=True)
            return True
        return False

    if step("publish"):
        rows += await producer.bench(settings, TOPICS[0], args.events, args.window, args.repetitions)
    if step("http"):
        rows += ingest.bench(settings, TOPICS[0], args.clients, args.seconds, args.repetitions)
    if step("consume"):
        rows += await consumers.bench(settings, CONSUMED_TOPICS[0], args.events, args.repetitions)
    if step("serde"):
        rows += await serde.bench(args.events * 10, args.repetitions)
    if step("http-clients"):
        rows += ingest.sweep(settings, TOPICS[0], [int(n) for n in args.sweep.split(",")], args.seconds)
    if step("workers"):
        counts = [int(n) for n in args.workers.split(",")]
        rows += await workers.bench(settings, CONSUMED_TOPICS[0], counts, args.partitions, args.backlog)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__)
    parser.add_argument("--events", type=int, default=20_000, help="events per publish and consume run")
    parser.add_argument("--seconds", type=float, default=5, help="length of each HTTP load run")
    parser.add_argument("--repetitions", type=int, default=3, help="runs per row; the median is reported")
    parser.add_argument("--window", type=int, default=256, help="publishes waiting for the broker at once")
    parser.add_argument("--clients", type=int, default=64, help="concurrent HTTP clients of the ingest rows")
    parser.add_argument("--sweep", default="1,16,64,256", help="concurrent HTTP clients of the latency sweep")
    parser.add_argument("--workers", default="1,2,4", help="worker processes of the scale-out rows")
    parser.add_argument("--partitions", type=int, default=12, help="partitions of the scale-out topic")
    parser.add_argument("--backlog", type=int, default=200_000, help="events waiting when the scale-out workers start")
    parser.add_argument("--only", default=",".join(ROWS), help=f"rows to measure, of {','.join(ROWS)}")
    parser.add_argument("--json", type=Path, help="write the rows here")
    args = parser.parse_args(argv)
    only = set(args.only.split(","))
    if unknown := only - set(ROWS):
        parser.error(f"unknown rows {sorted(unknown)}; choose from {ROWS}")
    if only & {"http", "http-clients"}:
        ingest.require_wrk()
    logging.basicConfig(level=logging.WARNING)
    # A fresh group's first coordinator lookup and a rebalance as workers join are expected here, not news.
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    with stack():
        rows = asyncio.run(measure(args, only))
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps([measured.as_json() for measured in rows], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
