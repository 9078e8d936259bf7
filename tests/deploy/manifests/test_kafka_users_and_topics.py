"""Least privilege: each KafkaUser grants exactly what the service and its patterns do, Read only on what is
consumed; the KafkaTopics are the spec's topics, their dead letters and the patterns' own, with their configs."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from extensions.kafka_events_spec import PATTERNS
from extensions.kafka_events_spec.patterns import DATABASE
from tests.deploy.manifests.helpers import (
    SERVICE_AUTHENTICATION,
    VARIANTS,
    Checked,
)
from tests.patterns import knowledge
from tools.render import render, variant_answers

pytestmark = pytest.mark.k8s


def expected_acls(answers: dict[str, Any]) -> set[tuple[str, str, str, frozenset[str]]]:
    """What the service does, from its answers: it publishes to every topic (each has a POST route, and `emits_to`
    names one of them), reads the consumed ones, dead-letters what it consumed; its group; its transactional ids."""
    operations: dict[tuple[str, str, str], set[str]] = {}

    def grant(kind: str, name: str, pattern: str, *ops: str) -> None:
        operations.setdefault((kind, name, pattern), set()).update(ops)

    topics = answers["spec"]["topics"]
    for topic in topics:
        grant("topic", topic["name"], "literal", "Write", "Describe")  # POST publishes to it
        grant("topic", topic["name"], "literal", "DescribeConfigs")  # doctor reads its min.insync.replicas
        if topic.get("emits_to"):
            grant("topic", topic["emits_to"], "literal", "Write", "Describe")  # the handlers' emitted events
        if topic.get("consumed", True):
            grant("topic", topic["name"], "literal", "Read", "Describe")
            # `dlq replay` reads the dead letters back, in a group of its own.
            grant("topic", topic["name"] + ".dlq", "literal", "Read", "Write", "Describe", "DescribeConfigs")
    if any(topic.get("consumed", True) for topic in topics):
        grant("group", answers["spec"]["consumer_group"], "literal", "Read")
        grant("group", answers["spec"]["consumer_group"] + ".dlq-replay", "literal", "Read")
    if answers.get("delivery_guarantee") == "exactly-once":  # not asked when nothing is consumed
        grant("transactionalId", answers["k8s_name"] + "-", "prefix", "Write", "Describe")
    for kind, name, pattern, ops in pattern_acls(answers):
        grant(kind, name, pattern, *ops)
    return {(*key, frozenset(ops)) for key, ops in operations.items()}


def chosen(answers: dict[str, Any]) -> list[ModuleType]:
    """What the shared tests know of each chosen pattern's Kafka objects (tests/patterns/<name>/manifests.py)."""
    return list(knowledge("manifests", answers.get("patterns") or []).values())


def pattern_topics(answers: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The topics the chosen patterns add, by name, with the config each must have."""
    return {name: config for pattern in chosen(answers) for name, config in pattern.topics(answers).items()}


def pattern_acls(answers: dict[str, Any]) -> list[tuple[str, str, str, tuple[str, ...]]]:
    """What the chosen patterns' processes do: the groups they read in, the topics they read and write, their
    transactional ids."""
    return [acl for pattern in chosen(answers) for acl in pattern.acls(answers)]


def check_kafka_user(user_file: Path, answers: dict[str, Any]) -> None:
    """The KafkaUser grants exactly what the service and its patterns use, and reads only what they consume."""
    (user,) = list(yaml.safe_load_all(user_file.read_text()))
    assert user["kind"] == "KafkaUser"
    assert user["metadata"]["name"] == answers["k8s_name"]
    assert user["spec"]["authentication"] == {"type": SERVICE_AUTHENTICATION[answers["security"]]}
    rendered = [
        (
            acl["resource"]["type"],
            acl["resource"]["name"],
            acl["resource"].get("patternType", "literal"),
            frozenset(acl["operations"]),
        )
        for acl in user["spec"]["authorization"]["acls"]
    ]
    assert len(rendered) == len(set(rendered)), "duplicate ACLs"
    assert set(rendered) == expected_acls(answers)
    readable = {name for kind, name, _, ops in rendered if kind == "topic" and "Read" in ops}
    consumed = {topic["name"] for topic in answers["spec"]["topics"] if topic.get("consumed", True)}
    by_patterns = {name for kind, name, _, ops in pattern_acls(answers) if kind == "topic" and "Read" in ops}
    replayed = {name + ".dlq" for name in consumed}
    assert readable == consumed | by_patterns | replayed, (
        "Read only on what is consumed and on its dead letters (`dlq replay`): never on a topic only produced"
    )
    for acl in user["spec"]["authorization"]["acls"]:
        assert acl.get("type", "allow") == "allow"
        assert "host" not in acl


@pytest.mark.parametrize("variant", VARIANTS)
def test_kafka_user_acls_are_exactly_what_the_service_uses(variant: str, checked: Checked) -> None:
    out, _, _ = checked
    project = out / variant
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    user_file = project / "deploy" / "strimzi" / "base" / "kafka-user.yaml"
    if answers.get("security", "none") == "none":
        assert not user_file.exists(), "no KafkaUser where the service does not authenticate"
    else:
        check_kafka_user(user_file, answers)

    # The KafkaTopics are the same topics, and the chart autoscales on the consumed ones.
    topics = list(yaml.safe_load_all((project / "deploy" / "strimzi" / "base" / "kafka-topics.yaml").read_text()))
    names = {t["name"] for t in answers["spec"]["topics"]}
    assert {t["spec"]["topicName"] for t in topics} == names | {n + ".dlq" for n in names} | set(
        pattern_topics(answers)
    )
    by_name = {t["spec"]["topicName"]: t for t in topics}
    for name, config in pattern_topics(answers).items():
        assert config.items() <= by_name[name]["spec"]["config"].items(), name
        if config.get("cleanup.policy") != "compact":
            assert "compact" not in str(by_name[name]["spec"]["config"].get("cleanup.policy", "")), name
        else:
            assert "retention.ms" not in by_name[name]["spec"]["config"], f"{name}: a compacted state never expires"
    (values_file,) = project.glob("deploy/helm/*/values.yaml")
    values = yaml.safe_load(values_file.read_text())
    assert values["kafka"]["user"] == answers["k8s_name"]
    assert values["kafka"]["consumerGroup"] == answers["spec"]["consumer_group"]
    spec = answers["spec"]
    # Topics a pattern has the service's consumer read (a captured table's changes): autoscaling follows them too.
    changes = [name for pattern in chosen(answers) for name in pattern.consumed_topics(answers)]
    assert [t["name"] for t in values["kafka"]["topics"]] == [t["name"] for t in spec["topics"]] + changes
    assert all(t["consumed"] for t in values["kafka"]["topics"] if t["name"] in changes)


def test_every_patterns_acls_are_in_the_kafka_user_of_a_secured_service(tmp_path: Path) -> None:
    """The matrix runs every pattern together without security (agent-patterns): rendered with scram-tls, its
    KafkaUser grants exactly what each pattern's processes use (groups, topics, transactional ids), nothing more."""
    answers = variant_answers("agent-patterns") | {"security": "scram-tls"}
    project = render(answers, tmp_path / "agent-patterns-secured")
    stored = yaml.safe_load((project / ".copier-answers.yml").read_text())
    # The data pipelines' Kafka Connect user: test_a_secured_connect_worker_gets_a_user_with_only_what_it_does.
    assert set(stored["patterns"]) == set(PATTERNS) - set(DATABASE), "every agent pattern the template offers"
    check_kafka_user(project / "deploy" / "strimzi" / "base" / "kafka-user.yaml", stored)
