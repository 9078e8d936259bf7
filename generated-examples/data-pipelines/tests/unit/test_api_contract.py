"""The HTTP contract's edges: bodies as strict as their Avro schemas, bounded sizes, every answer documented."""

from typing import Any

import pytest
from fastapi.testclient import TestClient

from order_pipelines.api.dependencies import get_publisher
from order_pipelines.events.catalog import TOPICS
from order_pipelines.events.models import Event
from order_pipelines.main import create_app
from order_pipelines.settings import Settings
from tests.samples import ROUTES, sample_event

from .test_api import RecordingPublisher


def client_with(publisher: RecordingPublisher, **settings: Any) -> TestClient:
    app = create_app(Settings(**settings))
    app.dependency_overrides[get_publisher] = lambda: publisher
    return TestClient(app)


def fields_of_type(python_type: type) -> list[tuple[Any, type[Event], str]]:
    """(topic, event type, field name) of every field whose values are of `python_type`."""
    return [
        (topic, event_type, name)
        for topic in TOPICS
        for event_type in topic.event_types
        for name, info in event_type.model_fields.items()
        if info.annotation is python_type and name not in {"type", "event_id", "occurred_at"}
    ]


@pytest.mark.parametrize(
    ("python_type", "lookalikes"),
    [(bool, [0, 1, "true"]), (int, ["7", True, 7.5]), (float, ["1.5", True]), (str, [7, True, None])],
)
def test_a_value_of_another_json_type_is_refused_not_coerced(python_type: type, lookalikes: list[Any]) -> None:
    publisher = RecordingPublisher()
    client = client_with(publisher)
    for topic, event_type, name in fields_of_type(python_type):
        valid = sample_event(topic, event_type).model_dump(mode="json")
        for lookalike in lookalikes:
            response = client.post(ROUTES[topic.name], json=valid | {name: lookalike})
            assert response.status_code == 422, f"{event_type.__name__}.{name} took {lookalike!r}"
    assert publisher.published == []


@pytest.mark.parametrize(
    "lookalike",
    # Pydantic reads the first three as seconds since the epoch, a date as its midnight, a time without zone as local.
    [0, 9.5, "9", "2026-01-31", "2026-01-31T09:30:00", "31/01/2026 09:30", "tomorrow"],
)
def test_a_timestamp_is_a_date_time_string_with_its_zone(lookalike: Any) -> None:
    publisher = RecordingPublisher()
    client = client_with(publisher)
    topic = TOPICS[0]
    valid = sample_event(topic).model_dump(mode="json")
    response = client.post(ROUTES[topic.name], json=valid | {"occurred_at": lookalike})
    assert response.status_code == 422, f"occurred_at took {lookalike!r}"
    assert "2026-01-31T09:30:00Z" in response.text
    for written in ["2026-01-31T09:30:00Z", "2026-01-31t09:30:00.250+02:00"]:
        assert client.post(ROUTES[topic.name], json=valid | {"occurred_at": written}).status_code == 202
    assert len(publisher.published) == 2


def test_an_empty_or_overlong_key_is_refused() -> None:
    publisher = RecordingPublisher()
    client = client_with(publisher)
    limit = Settings().event_key_max_length
    for topic in TOPICS:
        valid = sample_event(topic).model_dump(mode="json")
        if not isinstance(valid[topic.key_field], str):
            continue
        for key in ["", "k" * (limit + 1)]:
            response = client.post(ROUTES[topic.name], json=valid | {topic.key_field: key})
            assert response.status_code == 422, repr(key)
    assert publisher.published == []


def test_a_body_past_the_limit_gets_413_and_is_not_read() -> None:
    publisher = RecordingPublisher()
    client = client_with(publisher, max_request_bytes=4096)
    topic = TOPICS[0]
    # Any text field will do, the key when the topic has no other: the size is refused before the body is read.
    others = [name for t, _, name in fields_of_type(str) if t is topic and name != topic.key_field]
    text_field = others[0] if others else topic.key_field
    big = sample_event(topic).model_dump(mode="json") | {text_field: "x" * 5000}
    response = client.post(ROUTES[topic.name], json=big)
    assert response.status_code == 413
    assert "4096" in response.json()["detail"]
    # Without a Content-Length the body is counted as it streams in.
    chunks = iter([b'{"', b"x" * 3000, b"y" * 3000])
    response = client.post(ROUTES[topic.name], content=chunks, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert publisher.published == []


def test_every_answer_a_route_gives_is_in_the_openapi_document() -> None:
    document = create_app(Settings()).openapi()
    for topic in TOPICS:
        post = document["paths"][ROUTES[topic.name]]["post"]["responses"]
        assert {"202", "400", "413", "422", "500", "503"} <= set(post)
        for status in ("400", "413", "500", "503"):
            assert post[status]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Problem"}
        assert "Retry-After" in post["503"]["headers"]
        if topic.consumed:
            get = document["paths"][ROUTES[topic.name] + "/{key}"]["get"]["responses"]
            assert get["404"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Problem"}
