"""`python -m <package> fanout CHANNEL...`: run the named channels (every one if none is named) until SIGTERM.

One process per channel is how the Helm chart deploys them: scaling a channel's Deployment to zero pauses it,
and scaling it back replays from its last commit. Once the channels have started, /metrics is served on
METRICS_PORT (the pod's readiness probe asks it)."""

import argparse
import asyncio
import logging
import signal
from collections.abc import Sequence

from confluent_kafka.schema_registry import AsyncSchemaRegistryClient

from ...correlation import install_log_records
from ...events.avro import AvroSerde
from ...kafka.admin import DeclaredTopic, ensure_topics
from ...kafka.hooks import NO_HOOKS, Hooks
from ...kafka.producer import create_producer, stop_producer
from ...observability import metrics
from ...settings import Settings, get_settings
from .channel import ChannelRunner
from .channels import CHANNELS, TOPIC
from .topics import TOPICS

log = logging.getLogger(__name__)


async def run_channels(
    names: list[str], settings: Settings, hooks: Hooks = NO_HOOKS, topics: Sequence[DeclaredTopic] = TOPICS
) -> int:
    if settings.kafka_create_topics:
        await ensure_topics(settings, topics)
    registry = AsyncSchemaRegistryClient({"url": settings.schema_registry_url})
    serde = AvroSerde(registry, settings.schema_subject_strategy, settings.schema_auto_register)
    producer = create_producer(settings)
    await producer.start()
    runners = [ChannelRunner(CHANNELS[name], TOPIC, serde, producer, settings, hooks) for name in names]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        for runner in runners:
            await runner.start()
        log.info("fan-out channels running: %s", ", ".join(names))
        with metrics.served(settings.metrics_port):
            stopped = asyncio.create_task(stop.wait())
            ended = [asyncio.create_task(runner.finished()) for runner in runners]
            await asyncio.wait([stopped, *ended], return_when=asyncio.FIRST_COMPLETED)
            failed = any(task.done() for task in ended)
            for task in (stopped, *ended):
                task.cancel()
    finally:
        await asyncio.gather(*(runner.stop() for runner in runners), return_exceptions=True)
        await stop_producer(producer, settings.shutdown_timeout_seconds)
        await registry.aclose()
    if failed:
        log.error("a channel stopped on its own; exiting")
    return 1 if failed else 0


def main(argv: list[str], prog: str, hooks: Hooks = NO_HOOKS, topics: Sequence[DeclaredTopic] = TOPICS) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("channels", nargs="*", metavar="CHANNEL", help=f"one of {', '.join(CHANNELS)}; default all")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.channels) - set(CHANNELS))
    if unknown:
        parser.error(f"no channel {', '.join(unknown)}; the channels are {', '.join(CHANNELS)}")
    settings = get_settings()
    install_log_records()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s [%(correlation_id)s] %(message)s"
    )
    return asyncio.run(run_channels(args.channels or list(CHANNELS), settings, hooks, topics))
