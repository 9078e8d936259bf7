"""What the "hostile records patterns" row sees of the saga, in the project's interpreter (tools/chaos/hostile.py):
its orchestrator consumes a command topic of its own, where hostile records are written too."""

from __future__ import annotations

import importlib
from typing import Any

PROCESS = None
"""No consumer of the consumed topic of its own (see `channels`)."""


def consumers(package: str) -> dict[str, tuple[str, str]]:
    """The orchestrator's command topic and consumer group."""
    names: Any = importlib.import_module(f"{package}.patterns.saga.names")
    return {"saga": (names.COMMANDS_TOPIC, names.GROUP)}


def channels(package: str) -> dict[str, tuple[str, str]]:
    return {}
