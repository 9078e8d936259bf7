"""The kafka-events skill in .claude/skills/ is rendered for this service: an agent loading it must find every topic
and event the code knows, and a front matter it can parse."""

from pathlib import Path

import pytest
import yaml

from order_pipelines.events.catalog import TOPICS, Topic

SKILL = Path(__file__).resolve().parents[2] / ".claude" / "skills" / "kafka-events"


def skill_text() -> str:
    return "\n".join(path.read_text() for path in sorted(SKILL.rglob("*.md")))


def test_front_matter_names_the_skill_and_says_when_to_use_it() -> None:
    text = (SKILL / "SKILL.md").read_text()
    assert text.startswith("---\n"), "SKILL.md must open with YAML front matter"
    front = yaml.safe_load(text.split("---\n", 2)[1])
    assert front["name"] == "kafka-events"
    assert "Use it when" in front["description"]


@pytest.mark.parametrize("topic", TOPICS, ids=lambda topic: topic.name)
def test_skill_mentions_every_topic_and_its_events(topic: Topic) -> None:
    text = skill_text()
    assert f"`{topic.name}`" in text, f"the skill does not mention topic {topic.name}: run copier update"
    for event in topic.event_types:
        assert f"`{event.__name__}`" in text, f"the skill does not mention event {event.__name__}: run copier update"
