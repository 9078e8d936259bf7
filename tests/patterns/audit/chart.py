"""What tests/deploy/chart_processes.py needs to know about the audit log to run its chart's processes."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any


def readme_secrets(
    values: dict[str, Any], answers: dict[str, Any], stack: dict[str, str]
) -> dict[str, dict[str, bytes]]:
    """The Secrets the README says to create for it: the chain's key."""
    if "audit" not in values:
        return {}
    return {f"{answers['k8s_name']}-audit": {"chain-key": secrets.token_hex(32).encode()}}


def start_work(readme: str, post: Callable[[str, dict[str, Any]], Any]) -> None:
    """What the API is asked beyond the README's example POST for its processes to have work: nothing, every POST
    is audited."""


# A series of each of its processes' own work, by the component's prefix.
SERIES = {"audit-sealer": r"^audit_sealer_up 1\.0$"}


def group_topic(group: str, spec: dict[str, Any], readable: list[str]) -> str | None:
    """The topic `group` reads first, if it is the group of one of its processes: the sealer reads the intake."""
    return next(t for t in readable if t.endswith(".audit.intake")) if group.endswith(".audit-sealer") else None
