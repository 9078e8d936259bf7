"""What the shared manifest tests (tests/deploy/manifests) need to know about a chosen fan-out."""

from __future__ import annotations

from typing import Any

Acl = tuple[str, str, str, tuple[str, ...]]


def topics(answers: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The topics it adds, by name, with the config each must have: a dead-letter topic per channel."""
    fanout = answers["spec"]["fanout"]
    return {f"{fanout['topic']}.{channel}.dlq": {} for channel in fanout["channels"]}


def acls(answers: dict[str, Any]) -> list[Acl]:
    """Each channel reads the topic in its own group and writes its dead letters."""
    spec = answers["spec"]
    found: list[Acl] = [("topic", spec["fanout"]["topic"], "literal", ("Read", "Describe"))]
    for channel in spec["fanout"]["channels"]:
        found.append(("group", f"{spec['consumer_group']}.{channel}", "literal", ("Read",)))
        found.append(("topic", f"{spec['fanout']['topic']}.{channel}.dlq", "literal", ("Write", "Describe")))
    return found


def consumed_topics(answers: dict[str, Any]) -> list[str]:
    """Topics besides the spec's that the service's own consumer reads (and autoscaling follows): none."""
    return []


def components(answers: dict[str, Any]) -> dict[str, list[str]]:
    """Its processes' Deployments, by component, each with the arguments of its command: one per channel."""
    return {f"fanout-{channel}": ["fanout", channel] for channel in answers["spec"]["fanout"]["channels"]}


# Settings only one of its processes holds (from a Secret), by the component that holds each.
SECRET_SETTINGS: dict[str, str] = {}
