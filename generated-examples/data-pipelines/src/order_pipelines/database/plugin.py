"""The database as a plug-in: the `migrate` and `connect` commands."""

from ..plugins import Chosen, Command, Plugin
from .connectors import main as connect_main
from .migrations import main as migrate_main


def plugin() -> Plugin:
    def migrate(argv: list[str], prog: str, _chosen: Chosen) -> int:
        return migrate_main(argv, prog)

    def connect(argv: list[str], prog: str, chosen: Chosen) -> int:
        return connect_main(argv, prog, chosen.topics)

    return Plugin(
        name="database",
        commands=(
            Command("migrate", "apply the database migrations not applied yet (a deploy step)", migrate),
            Command("connect", "register or show the Debezium connectors (`connect --help` for more)", connect),
        ),
    )
