"""What the "hostile records patterns" row sees of the fan-out, in the project's interpreter (tools/chaos/hostile.py):
its channels consume the consumed topic beside the runner, each in a group of its own, and dead-letter the hostile
records there themselves."""

from __future__ import annotations

import importlib
from typing import Any

PROCESS = "fanout"
"""The service's command that runs the channels."""


def consumers(package: str) -> dict[str, tuple[str, str]]:
    """No topic of its own that hostile records are written to."""
    return {}


def channels(package: str) -> dict[str, tuple[str, str]]:
    """Each channel's consumer group and dead-letter topic, by channel name."""
    module: Any = importlib.import_module(f"{package}.patterns.fanout.channels")
    return {name: (channel.group, channel.dead_letter) for name, channel in module.CHANNELS.items()}
