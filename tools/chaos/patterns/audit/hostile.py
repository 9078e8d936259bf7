"""What the "hostile records patterns" row sees of the audit, in the project's interpreter (tools/chaos/hostile.py):
its sealer consumes an intake topic of its own, where hostile records are written too."""

from __future__ import annotations

import importlib
from typing import Any

PROCESS = None
"""No consumer of the consumed topic of its own (see `channels`)."""


def consumers(package: str) -> dict[str, tuple[str, str]]:
    """The sealer's intake topic and consumer group."""
    names: Any = importlib.import_module(f"{package}.patterns.audit.names")
    return {"audit": (names.INTAKE_TOPIC, names.SEALER_GROUP)}


def channels(package: str) -> dict[str, tuple[str, str]]:
    return {}
