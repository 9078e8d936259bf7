"""What the shared manifest tests (tests/deploy/manifests) need to know about chosen change data capture."""

from __future__ import annotations

from typing import Any

Acl = tuple[str, str, str, tuple[str, ...]]


def change_topic(answers: dict[str, Any]) -> str:
    cdc = answers["spec"]["cdc"]
    return str(cdc.get("topic") or cdc["table"].replace("_", "-") + ".changes")


def topics(answers: dict[str, Any]) -> dict[str, dict[str, Any]]:
    changes = change_topic(answers)
    return {changes: {"cleanup.policy": "delete"}, changes + ".dlq": {}}


def acls(answers: dict[str, Any]) -> list[Acl]:
    """Nothing of the service's own: its consumer reads the change topic in the spec's group (the Connect user
    writes it, tests/patterns/database/test_manifests.py)."""
    return []


def consumed_topics(answers: dict[str, Any]) -> list[str]:
    """The change topic of a captured table is consumed too: autoscaling follows its lag as well."""
    return [change_topic(answers)]


def components(answers: dict[str, Any]) -> dict[str, list[str]]:
    return {}


SECRET_SETTINGS: dict[str, str] = {}
