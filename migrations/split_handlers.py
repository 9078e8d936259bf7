"""Release 0.2.0 moved dispatching out of handlers.py: `dispatch.Dispatcher` (regenerated) routes each event to an
`on_<event>` method of `EventHandlers` and records it in the view. handlers.py is the user's, never overwritten, so
`copier update` from 0.1.x keeps its old `__init__(view)` and `__call__`; this migration removes those two methods
and the imports only they used, and keeps every `on_<event>` method as the user wrote it.

    python split_handlers.py src/<package>/handlers.py

It changes nothing in a file without the old methods (already migrated, or rewritten by its owner), and stops with
the steps to do by hand when the class is not where 0.1.x put it. Standard library only: it runs under the Python
that runs Copier.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

OLD_METHODS = ("__init__", "__call__")
# Imports 0.1.x's handlers.py needed for those methods alone.
OLD_IMPORTS = {"from .events.catalog import Topic": "Topic", "from .views import LatestEventByKey": "LatestEventByKey"}
DOCSTRING = (
    '    """Satisfies `dispatch.Handlers`: one method per consumed event type, returning the events it causes."""'
)
BY_HAND = (
    "In {path}: delete EventHandlers.__init__ and EventHandlers.__call__ (dispatch.py routes the events now), keep "
    "the on_<event> methods, and drop the imports of Topic and LatestEventByKey; see CHANGELOG.md, 0.2.0."
)


def migrate(source: str) -> str | None:
    """The migrated text, or None when `source` has nothing to migrate."""
    tree = ast.parse(source)
    handlers = next(
        (node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "EventHandlers"), None
    )
    if handlers is None:
        raise LookupError("no class EventHandlers")
    old = [n for n in handlers.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name in OLD_METHODS]
    if not old:
        return None
    lines = source.splitlines(keepends=True)
    drop: set[int] = set()  # 0-based line numbers
    for method in old:
        first = min([method.lineno, *(d.lineno for d in method.decorator_list)]) - 1
        last = method.end_lineno or method.lineno
        drop.update(range(first, last))
        while last < len(lines) and not lines[last].strip():  # the blank lines after it
            drop.add(last)
            last += 1
    kept = [line for number, line in enumerate(lines) if number not in drop]
    # The class opens with the docstring the template writes now, then a blank line, then its first method.
    header = handlers.lineno - 1 - sum(1 for number in drop if number < handlers.lineno - 1)
    if ast.get_docstring(handlers) is None:
        kept[header + 1 : header + 1] = [DOCSTRING + "\n", "\n"]
    text = "".join(kept)
    rest = ast.parse(text)
    used = {node.id for node in ast.walk(rest) if isinstance(node, ast.Name)}
    for statement, name in OLD_IMPORTS.items():
        if name not in used:
            text = text.replace(statement + "\n", "")
    return text


def main(argv: list[str]) -> int:
    path = Path(argv[1])
    if not path.exists():
        return 0  # a service that consumes nothing has no handlers
    try:
        migrated = migrate(path.read_text())
    except (LookupError, SyntaxError) as error:
        print(f"Migration to 0.2.0 stopped ({error}). {BY_HAND.format(path=path)}", file=sys.stderr)
        return 1
    if migrated is not None:
        path.write_text(migrated)
        print(f"Migrated {path} to 0.2.0: EventHandlers keeps its on_<event> methods; dispatch.py routes the events.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
