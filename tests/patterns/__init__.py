"""Each plug-in's share of the repo's tests, one sub-package per plug-in: the patterns of
`extensions.kafka_events_spec.patterns.ALL`, and the parts they share (the database of the outbox and the CDC).

A sub-package holds the plug-in's own test modules (`test_*.py`) and, for the shared tests, small modules of what
they need to know about it, each named after the concern (`combinations`, `manifests`, `chart`, `skill`). A shared
test asks `knowledge(concern)` and loops over what it gets: adding a pattern adds its sub-package here, and no shared
test changes."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable
from types import ModuleType

from extensions.kafka_events_spec.patterns import ALL

PATTERNS = tuple(pattern.NAME for pattern in ALL)
"""The patterns the `patterns` answer offers, in their one order."""
_FOUND = {module.name for module in pkgutil.iter_modules(__path__) if module.ispkg}
NAMES = (*(name for name in PATTERNS if name in _FOUND), *sorted(_FOUND - set(PATTERNS)))
"""Every sub-package: the patterns in their order, then the parts they share."""


def knowledge(concern: str, names: Iterable[str] = NAMES) -> dict[str, ModuleType]:
    """The module `concern` of each of `names` that has one, by name, in the order of `names`."""
    found = {}
    for name in names:
        qualified = f"{__name__}.{name}.{concern}"
        try:
            found[name] = importlib.import_module(qualified)
        except ModuleNotFoundError as missing:
            if missing.name != qualified:
                raise
    return found
