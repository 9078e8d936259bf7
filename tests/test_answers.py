"""Bad answers are refused before anything is rendered, with a message that says what to type instead."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from tools.render import render

EVENT = {"name": "ThingHappened", "fields": [{"name": "thing_id", "type": "string"}]}
SPEC: dict[str, Any] = {
    "consumer_group": "things",
    "topics": [{"name": "things", "key": "thing_id", "events": [EVENT]}],
}


def spec_with(path: str, value: Any) -> dict[str, Any]:
    """SPEC with one value replaced, addressed like `topics.0.events.0.name`."""
    spec = copy.deepcopy(SPEC)
    *parents, last = [int(part) if part.isdigit() else part for part in path.split(".")]
    node: Any = spec
    for part in parents:
        node = node[part]
    node[last] = value
    return spec


REFUSALS = [
    ({"project_name": "Agent Tasks"}, "project_name", "e.g. agent-tasks"),
    ({"project_name": "-agents"}, "project_name", "starts with a letter"),
    ({"package_name": "2fast"}, "package_name", "Type a Python identifier"),
    ({"package_name": "Agent-Tasks"}, "package_name", "Type a Python identifier"),
    ({"package_name": "class"}, "package_name", "Python keyword"),
    ({"package_name": "kafka"}, "package_name", "type another name, e.g. kafka_service"),
    ({"k8s_name": "Agent_Tasks"}, "k8s_name", "DNS-1123"),
    ({"k8s_name": "a" * 64}, "k8s_name", "at most 63"),
    ({"description": "  "}, "description", "Type one sentence"),
    ({"spec": ["not", "a", "mapping"]}, "spec", "must be a mapping"),
    ({"spec": spec_with("consumer_group", "bad group!")}, "spec", "spec.consumer_group: type a group id"),
    ({"spec": spec_with("topics", [])}, "spec", "list at least one topic"),
    ({"spec": spec_with("topics.0.name", "bad topic")}, "spec", "spec.topics[0].name: type a Kafka topic name"),
    ({"spec": spec_with("topics.0.name", "t" * 245)}, "spec", "at most 244 characters"),
    ({"spec": spec_with("topics.0.name", "..")}, "spec", "type a Kafka topic name"),
    ({"spec": spec_with("topics.0.name", "things.dlq")}, "spec", "clashes with another topic"),
    ({"spec": spec_with("topics.0.name", "agent.task_events")}, "spec", "mixes"),
    ({"spec": spec_with("topics.0.partitions", 0)}, "spec", "whole number from 1 to 1000"),
    ({"spec": spec_with("topics.0.route", "tasks")}, "spec", "type an HTTP path"),
    ({"spec": spec_with("topics.0.key", "missing_field")}, "spec", 'the topic key "missing_field" must be a field'),
    ({"spec": spec_with("topics.0.events", [])}, "spec", "list at least one event"),
    ({"spec": spec_with("topics.0.events.0.name", "thing_happened")}, "spec", "PascalCase"),
    ({"spec": spec_with("topics.0.events.0.fields.0.type", "uuid")}, "spec", "type one of string, int, long"),
    ({"spec": spec_with("topics.0.events.0.fields.0.name", "ThingId")}, "spec", "snake_case"),
    ({"spec": spec_with("topics.0.events.0.fields.0.name", "event_id")}, "spec", "set by the service"),
    ({"spec": spec_with("topics.0.events.0.fields.0.name", "class")}, "spec", "Python keyword"),
    ({"spec": spec_with("topics.0.emits_to", "nowhere")}, "spec", "spec.topics[0].emits_to: name another topic"),
    ({"schema_subject_strategy": "topic"}, "schema_subject_strategy", "type topic-record (or record) instead"),
]


@pytest.mark.parametrize(("answers", "question", "advice"), REFUSALS, ids=[r[2][:40] for r in REFUSALS])
def test_a_bad_answer_is_refused_with_advice(
    answers: dict[str, Any], question: str, advice: str, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match=f"question '{question}'") as refused:
        render(answers, tmp_path / "out")
    assert advice in str(refused.value)
    assert not (tmp_path / "out" / "src").exists(), "nothing is rendered from a refused answer"


def test_two_topics_sharing_an_event_name_are_refused(tmp_path: Path) -> None:
    spec = copy.deepcopy(SPEC)
    spec["topics"].append({"name": "others", "key": "thing_id", "events": [EVENT]})
    with pytest.raises(ValueError, match="declared twice"):
        render({"spec": spec}, tmp_path / "out")


def test_only_a_consumed_topic_may_emit(tmp_path: Path) -> None:
    spec = copy.deepcopy(SPEC)
    spec["topics"].append({"name": "outcomes", "key": "thing_id", "events": [{**EVENT, "name": "ThingDone"}]})
    spec["topics"][0] |= {"consumed": False, "emits_to": "outcomes"}
    with pytest.raises(ValueError, match="only a consumed topic emits events"):
        render({"spec": spec}, tmp_path / "out")


def test_more_event_types_than_schema_files_are_refused(tmp_path: Path) -> None:
    spec = copy.deepcopy(SPEC)
    spec["topics"][0]["events"] = [{**EVENT, "name": f"Thing{i}Happened"} for i in range(41)]
    with pytest.raises(ValueError, match="at most 40"):
        render({"spec": spec}, tmp_path / "out")


def test_a_valid_minimal_spec_renders(tmp_path: Path) -> None:
    dest = render({"project_name": "things", "spec": SPEC}, tmp_path / "out")
    catalog = (dest / "src" / "things" / "events" / "catalog.py").read_text()
    assert 'name="things"' in catalog
    assert "ThingHappened" in catalog
