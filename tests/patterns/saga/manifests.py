"""What the shared manifest tests (tests/deploy/manifests) need to know about a chosen saga."""

from __future__ import annotations

from typing import Any

Acl = tuple[str, str, str, tuple[str, ...]]


def slug(answers: dict[str, Any]) -> str:
    return str(answers["spec"]["saga"]["name"]).replace("_", "-")


def topics(answers: dict[str, Any]) -> dict[str, dict[str, Any]]:
    saga = slug(answers)
    return {
        f"saga.{saga}.commands": {},
        f"saga.{saga}.commands.dlq": {},  # records the orchestrator cannot read
        # The orchestrator rebuilds every saga from the latest state per saga id: compacted, never deleted by age.
        f"saga.{saga}.state": {"cleanup.policy": "compact"},
    }


def acls(answers: dict[str, Any]) -> list[Acl]:
    """The orchestrator reads and writes its commands and state in its group, under its own transactional ids."""
    saga = slug(answers)
    return [
        ("topic", f"saga.{saga}.commands", "literal", ("Read", "Write", "Describe")),
        ("topic", f"saga.{saga}.commands.dlq", "literal", ("Write", "Describe")),
        ("topic", f"saga.{saga}.state", "literal", ("Read", "Write", "Describe")),
        ("group", f"{answers['spec']['consumer_group']}.saga-{saga}", "literal", ("Read",)),
        ("transactionalId", f"{answers['k8s_name']}-saga-{saga}-", "prefix", ("Write", "Describe")),
    ]


def consumed_topics(answers: dict[str, Any]) -> list[str]:
    return []


def components(answers: dict[str, Any]) -> dict[str, list[str]]:
    return {"saga-orchestrator": ["saga", "run"]}


SECRET_SETTINGS: dict[str, str] = {}
