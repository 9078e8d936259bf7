"""Fan-out as a plug-in: the `fanout` command runs channels, each in a consumer group of its own."""

from ...plugins import Chosen, Command, Plugin
from .run import main
from .topics import TOPICS


def plugin() -> Plugin:
    def fanout_command(argv: list[str], prog: str, chosen: Chosen) -> int:
        return main(argv, prog, chosen.hooks, chosen.topics)

    return Plugin(
        name="fanout",
        commands=(Command("fanout", "run fan-out channels until SIGTERM (`fanout --help` for more)", fanout_command),),
        topics=TOPICS,
    )
