"""Command line: `python -m task_sampler worker` runs the consumer without the HTTP API.

The worker enters the same lifespan as the web app, so both build their Kafka clients one way. It stops
cleanly on SIGTERM or SIGINT (finishing the message in hand), and exits non-zero if its consumer fails.
"""

import argparse
import asyncio
import logging
import signal
import sys

from .app import create_app
from .kafka.consumer import ConsumerRunner
from .settings import get_settings

log = logging.getLogger(__name__)


async def work() -> int:
    settings = get_settings().model_copy(update={"consumer_enabled": True})
    app = create_app(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with app.router.lifespan_context(app):
        runner: ConsumerRunner = app.state.runner
        stopped = asyncio.create_task(stop.wait())
        finished = asyncio.create_task(runner.finished())
        await asyncio.wait([stopped, finished], return_when=asyncio.FIRST_COMPLETED)
        failed = finished.done()
        stopped.cancel()
        finished.cancel()
    if failed:
        log.error("the consumer stopped on its own; exiting")
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m task_sampler", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("worker", help="consume and process events until SIGTERM, without HTTP")
    parser.parse_args(argv)
    return asyncio.run(work())


if __name__ == "__main__":
    sys.exit(main())
