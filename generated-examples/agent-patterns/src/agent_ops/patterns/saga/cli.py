"""`python -m agent_ops saga run|start|show`: run the orchestrator, start a saga, print a saga's state."""

import argparse
import asyncio
import json
import logging
import signal
import sys
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from ...correlation import install_log_records
from ...kafka.admin import DeclaredTopic, ensure_topics, topic_partitions
from ...kafka.port import Producer
from ...kafka.producer import create_producer, stop_producer
from ...observability import metrics
from ...settings import Settings, get_settings
from . import names
from .definition import Steps
from .machine import SagaState
from .orchestrator import SagaOrchestrator, read_states
from .start import start_saga
from .steps import TaskRunSteps
from .topics import TOPICS

INPUT_EXAMPLE = '{"task_id": "t-1"}'
"""What --input takes: a JSON object, whatever the saga's steps read from it."""


async def run_until_stopped(settings: Settings, steps: Steps, topics: Sequence[DeclaredTopic] = TOPICS) -> int:
    """Orchestrate with `steps` until SIGTERM or SIGINT; 1 when the orchestrator stopped on its own."""
    if settings.kafka_create_topics:
        await ensure_topics(settings, topics)
    orchestrator = SagaOrchestrator(settings, steps)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await orchestrator.start()
    try:
        # Served once the orchestrator has started: the pod's readiness probe asks this port.
        with metrics.served(settings.metrics_port):
            stopped = asyncio.create_task(stop.wait())
            ended = asyncio.create_task(orchestrator.finished())
            await asyncio.wait([stopped, ended], return_when=asyncio.FIRST_COMPLETED)
            failed = ended.done()
            stopped.cancel()
            ended.cancel()
    finally:
        await orchestrator.stop()
    if failed:
        logging.getLogger(__name__).error("the saga orchestrator stopped on its own; exiting")
    return 1 if failed else 0


async def saga_state(settings: Settings, saga_id: str) -> SagaState | None:
    """A saga's latest committed state, read from the partition its id is keyed to."""
    for partition in await topic_partitions(settings, names.STATE_TOPIC):
        found = (await read_states(settings, partition)).get(saga_id)
        if found is not None:
            return found
    return None


async def start(settings: Settings, input: dict[str, Any], saga_id: str | None) -> str:
    producer: Producer = create_producer(settings)
    await producer.start()
    try:
        return (await start_saga(producer, input, saga_id, settings.publish_timeout_seconds)).saga_id
    finally:
        await stop_producer(producer, settings.shutdown_timeout_seconds)


def main(argv: list[str], prog: str, topics: Sequence[DeclaredTopic] = TOPICS) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="run the task_run saga orchestrator until SIGTERM")
    begin = commands.add_parser("start", help="start a task_run saga; prints its id")
    begin.add_argument("--input", default="{}", help=f"the saga's input as a JSON object, e.g. '{INPUT_EXAMPLE}'")
    begin.add_argument("--id", help="the saga's id (a retry with the same id starts nothing new); default: new")
    show = commands.add_parser("show", help="print a saga's state as JSON; exit 1 if there is no such saga")
    show.add_argument("--id", required=True)
    args = parser.parse_args(argv)
    settings = get_settings()
    install_log_records()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s [%(correlation_id)s] %(message)s"
    )
    if args.command == "run":
        return asyncio.run(run_until_stopped(settings, TaskRunSteps(), topics))
    if args.command == "start":
        try:
            input = json.loads(args.input)
        except ValueError as error:
            parser.error(f"--input is not JSON: {error}")
        if not isinstance(input, dict):
            parser.error(f"--input must be a JSON object, e.g. '{INPUT_EXAMPLE}'")
        try:
            print(asyncio.run(start(settings, input, args.id)))
        except ValueError as error:
            parser.error(str(error))
        return 0
    state = asyncio.run(saga_state(settings, args.id))
    if state is None:
        print(f"no saga {args.id} on {names.STATE_TOPIC}", file=sys.stderr)
        return 1
    print(json.dumps(asdict(state), sort_keys=True))
    return 0
