"""The database as a plug-in: the `migrate` and `connect` commands."""

from ..kafka.hooks import Hooks
from ..plugins import Command, Plugin
from .connectors import main as connect_main
from .migrations import main as migrate_main


def plugin() -> Plugin:
    def migrate(argv: list[str], prog: str, _hooks: Hooks) -> int:
        return migrate_main(argv, prog)

    def connect(argv: list[str], prog: str, _hooks: Hooks) -> int:
        return connect_main(argv, prog)

    return Plugin(
        name="database",
        commands=(
            Command("migrate", "apply the database migrations not applied yet (a deploy step)", migrate),
            Command("connect", "register or show the Debezium connectors (`connect --help` for more)", connect),
        ),
    )
