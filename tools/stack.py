"""The local stack launcher, `template/scripts/kafka_stack.py`, imported by the repo's own tools and tests.

    from tools.stack import kafka_stack
    kafka_stack.restart(state_dir, "kafka")

It is the very file every generated project carries (standard library only): the bundle of the package
`launcher/kafka_stack/` that `python -m tools.launcher --write` makes, so the repo's tests run what users run.
"""

from __future__ import annotations

import sys
from pathlib import Path

LAUNCHER = Path(__file__).resolve().parents[1] / "template" / "scripts" / "kafka_stack.py"
if str(LAUNCHER.parent) not in sys.path:
    sys.path.append(str(LAUNCHER.parent))

import kafka_stack  # noqa: E402

__all__ = ["LAUNCHER", "kafka_stack"]
