import pytest
from pydantic import ValidationError

from order_pipelines.events.catalog import TOPICS, topic_for, topic_named
from tests.samples import sample_event

ALL_EVENTS = [(topic, event_type) for topic in TOPICS for event_type in topic.event_types]


def test_each_event_type_belongs_to_exactly_one_topic() -> None:
    for topic, event_type in ALL_EVENTS:
        assert topic_for(sample_event(topic, event_type)) is topic
    assert len({event_type for _, event_type in ALL_EVENTS}) == len(ALL_EVENTS)


def test_records_are_keyed_by_the_topics_key_field() -> None:
    for topic in TOPICS:
        event = sample_event(topic, key="42")
        assert topic.key_of(event) == b"42"


def test_unknown_fields_are_refused() -> None:
    topic = TOPICS[0]
    payload = sample_event(topic).model_dump() | {"surprise": 1}
    with pytest.raises(ValidationError):
        topic.event_types[0](**payload)


def test_topics_are_looked_up_by_name() -> None:
    for topic in TOPICS:
        assert topic_named(topic.name) is topic
        assert topic.dead_letter == f"{topic.name}.dlq"
