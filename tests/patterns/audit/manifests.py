"""What the shared manifest tests (tests/deploy/manifests) need to know about a chosen audit log."""

from __future__ import annotations

from typing import Any

Acl = tuple[str, str, str, tuple[str, ...]]


def log_topic(answers: dict[str, Any]) -> str:
    spec = answers["spec"]
    return str((spec.get("audit") or {}).get("topic") or spec["topics"][0]["name"] + ".audit")


def topics(answers: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The log, its intake and the intake's dead letters."""
    name = log_topic(answers)
    days = (answers["spec"].get("audit") or {}).get("retention_days")
    return {
        # Append-only: deleted by age only (forever by default), never compacted.
        name: {"cleanup.policy": "delete", "retention.ms": days * 86_400_000 if days else -1},
        name + ".intake": {},
        name + ".intake.dlq": {},  # intake records the sealer cannot read
    }


def acls(answers: dict[str, Any]) -> list[Acl]:
    """The sealer reads the intake in its group and appends to the log under its own transactional ids."""
    name = log_topic(answers)
    return [
        ("topic", name + ".intake", "literal", ("Read", "Write", "Describe")),
        ("topic", name + ".intake.dlq", "literal", ("Write", "Describe")),
        ("topic", name, "literal", ("Read", "Write", "Describe")),
        ("group", f"{answers['spec']['consumer_group']}.audit-sealer", "literal", ("Read",)),
        ("transactionalId", answers["k8s_name"] + "-audit-sealer-", "prefix", ("Write", "Describe")),
    ]


def consumed_topics(answers: dict[str, Any]) -> list[str]:
    return []


def components(answers: dict[str, Any]) -> dict[str, list[str]]:
    return {"audit-sealer": ["audit", "seal"]}


# The chain's key, from a Secret: only the sealer holds it.
SECRET_SETTINGS = {"AUDIT_CHAIN_KEY": "audit-sealer"}
