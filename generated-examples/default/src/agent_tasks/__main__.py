"""Command line: `worker` runs the consumer without the HTTP API, `schemas` registers and checks the Avro schemas,
`dlq replay` puts dead letters back on their topic, `doctor` diagnoses lag, replication and rebalancing storms;
each chosen pattern adds its own commands (`--help` lists them).

`python -m agent_tasks schemas register|check|check-released|release` is
`python -m agent_tasks.schema_registry`; the Helm chart's hook Job runs `schemas register` before each install
and upgrade.

The worker enters the same lifespan as the web app, so both build their Kafka clients one way. It stops
cleanly on SIGTERM or SIGINT (finishing the message in hand), and exits non-zero if its consumer fails.
"""

import argparse
import asyncio
import logging
import signal
import sys

from .kafka.consumer import ConsumerRunner
from .kafka.dlq_replay import main as dlq_main
from .main import chosen_plugins, create_app
from .observability import metrics
from .observability.doctor import main as doctor_main
from .plugins import chosen
from .schema_registry import main as schemas_main
from .settings import get_settings

log = logging.getLogger(__name__)


async def work() -> int:
    settings = get_settings().model_copy(update={"consumer_enabled": True})
    app = create_app(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    # No HTTP API here: Prometheus scrapes the worker on a port of its own.
    with metrics.served(settings.metrics_port):
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
    argv = sys.argv[1:] if argv is None else argv
    prog = "python -m agent_tasks"
    if argv[:1] == ["schemas"]:
        # Everything after `schemas` is the schema tool's, its --help included.
        return schemas_main(argv[1:], prog=f"{prog} schemas")
    if argv[:1] == ["doctor"]:
        return doctor_main(argv[1:], prog=f"{prog} doctor")
    if argv[:1] == ["dlq"]:
        return dlq_main(argv[1:], prog=f"{prog} dlq")
    plugins = chosen_plugins()
    commands = {command.name: command for plugin in plugins for command in plugin.commands}
    if argv[:1] and argv[0] in commands:
        return commands[argv[0]].main(argv[1:], f"{prog} {argv[0]}", chosen(plugins))
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    choices = parser.add_subparsers(dest="command", required=True)
    choices.add_parser("worker", help="consume and process events until SIGTERM, without HTTP")
    choices.add_parser("dlq", help="replay dead letters onto their topic, each once (`dlq --help`)")
    choices.add_parser("schemas", help="register or check the Avro schemas (`schemas --help` for more)")
    choices.add_parser("doctor", help="diagnose the cluster and the consumer group (`doctor --help`)")
    for command in commands.values():
        choices.add_parser(command.name, help=command.help)
    parser.parse_args(argv)
    return asyncio.run(work())


if __name__ == "__main__":
    sys.exit(main())
