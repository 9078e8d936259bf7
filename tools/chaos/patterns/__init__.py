"""Each optional pattern's chaos rows and their helpers, a folder each (tools/chaos/patterns/<name>/), found here by
the modules they hold:

    rows.py      its rows of the chaos table and how the runner judges and shows them (`Rows`), for tools/chaos/run.py
    scenario.py  `KINDS`: scenarios tools/chaos/scenario.py runs for it in a generated project's interpreter
    hostile.py   its consumers the "hostile records patterns" row writes hostile records for, for tools/chaos/hostile.py
    checks.py    tests of its helpers, collected as tests of tests/chaos/test_chaos.py

Standard library only: the scenario scripts import this package as `patterns`, beside them, in a generated project's
interpreter; this repository imports it as `tools.chaos.patterns`.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Protocol

FOLDER = Path(__file__).resolve().parent

Row = tuple[str, str, dict[str, Any]]
"""A planned scenario: its name, the project it drives, and its arguments."""


class Rows(Protocol):
    """What a pattern's rows.py holds."""

    AFTER: str
    """The row of the table its rows follow: a shared row or another pattern's."""
    DOC: dict[str, str]
    """Lines of `python -m tools.chaos.run --help`, by row."""
    PROJECTS: dict[str, str]
    """The projects its rows drive, by name: the variant each renders. A project whose variant is missing (under
    tests/variants/) is left out, and its rows with it."""
    BORROWED: dict[str, str]
    """Projects of rows that run in this repository's interpreter, without a service of their own: the project whose
    package (and, when it is rendered, directory) they are given."""
    SCRIPTS: dict[str, Path]
    """Scripts run with the project's interpreter, by kind; a kind of neither SCRIPTS nor MODULES runs in
    tools/chaos/scenario.py."""
    MODULES: dict[str, str]
    """Modules run with this repository's interpreter (`python -m`), by kind: the rows of a borrowed project."""
    WEIGHT: dict[str, float]
    """Rough length of a row against an ordinary one, where it is not 1."""
    ON_CONNECT: set[str]
    """Rows on the stack's PostgreSQL and Kafka Connect."""
    PLANNED_CRASHES: set[str]
    """Rows where a worker's exit is planned: reported, not a failure."""

    def rows(self, inputs: int, kills: int) -> list[Row]: ...

    def verdict(self, name: str, r: dict[str, Any]) -> list[str]:
        """The broken promises of a result of one of its rows (empty when they held, or when the row is not its)."""
        ...

    def notes(self, r: dict[str, Any]) -> list[str]:
        """The table's notes on a result that holds its keys."""
        ...


def names(part: str) -> list[str]:
    """The patterns that have a module `part` (e.g. "rows"), in the order of their folders' names."""
    return sorted(folder.name for folder in FOLDER.iterdir() if (folder / f"{part}.py").exists())


def parts(part: str) -> dict[str, Any]:
    """Each pattern's module `part`, by pattern, for the patterns that have one."""
    return {name: importlib.import_module(f"{__name__}.{name}.{part}") for name in names(part)}
