"""Fan-out as a plug-in: the `fanout` command runs channels, each in a consumer group of its own."""

from ...kafka.hooks import Hooks
from ...plugins import Command, Plugin
from ..topics import ensure_pattern_topics
from .run import main


def plugin() -> Plugin:
    def fanout_command(argv: list[str], prog: str, hooks: Hooks) -> int:
        return main(argv, prog, hooks)

    return Plugin(
        name="fanout",
        commands=(Command("fanout", "run fan-out channels until SIGTERM (`fanout --help` for more)", fanout_command),),
        ensure_topics=ensure_pattern_topics,
    )
