"""Correlation ids: taken from the caller or made, continued from a consumed record, put on every event."""

import logging

from fastapi.testclient import TestClient

from agent_ops import correlation
from agent_ops.api.dependencies import get_publisher
from agent_ops.events.catalog import TOPICS
from agent_ops.events.models import Event
from agent_ops.kafka.producer import Published, event_headers
from agent_ops.main import create_app
from agent_ops.settings import Settings
from tests.samples import ROUTES, sample_event

TOPIC = TOPICS[0]


class HeaderRecordingPublisher:
    """Records the headers each event would be sent with, as computed in the request's context."""

    def __init__(self) -> None:
        self.headers: list[dict[str, bytes]] = []

    async def publish(self, event: Event) -> Published:
        self.headers.append(dict(event_headers(event)))
        return Published(str(event.event_id), TOPIC.name, 0, 0)


def client_with(publisher: HeaderRecordingPublisher) -> TestClient:
    app = create_app(Settings())
    app.dependency_overrides[get_publisher] = lambda: publisher
    return TestClient(app)


def test_a_callers_correlation_id_is_answered_and_carried_by_the_event() -> None:
    publisher = HeaderRecordingPublisher()
    response = client_with(publisher).post(
        ROUTES[TOPIC.name],
        json=sample_event(TOPIC).model_dump(mode="json"),
        headers={correlation.HTTP_HEADER: "order-42"},
    )
    assert response.status_code == 202, response.text
    assert response.headers[correlation.HTTP_HEADER] == "order-42"
    assert publisher.headers[0]["correlation-id"] == b"order-42"
    assert publisher.headers[0]["causation-id"] == b"order-42"


def test_without_one_or_with_an_invalid_one_a_request_gets_a_new_id() -> None:
    publisher = HeaderRecordingPublisher()
    client = client_with(publisher)
    event = sample_event(TOPIC).model_dump(mode="json")
    plain = client.post(ROUTES[TOPIC.name], json=event)
    forged = client.post(ROUTES[TOPIC.name], json=event, headers={correlation.HTTP_HEADER: "a b\nFAKE LOG LINE"})
    ids = [plain.headers[correlation.HTTP_HEADER], forged.headers[correlation.HTTP_HEADER]]
    assert len(set(ids)) == 2
    assert all(len(i) == 36 for i in ids)
    assert [h["correlation-id"].decode() for h in publisher.headers] == ids


def test_a_consumed_record_continues_its_work_and_causes_what_it_emits() -> None:
    correlation.adopt([("event-id", b"e-1"), ("correlation-id", b"order-42")])
    assert correlation.correlation_id() == "order-42"
    assert dict(correlation.outgoing("e-2")) == {"correlation-id": b"order-42", "causation-id": b"e-1"}


def test_a_record_from_an_older_producer_starts_its_own_work() -> None:
    correlation.adopt([("event-id", b"e-1")])
    assert correlation.correlation_id() == "e-1"


def test_log_lines_show_the_correlation_id() -> None:
    correlation.install_log_records()
    correlation.begin("order-43")
    record = logging.getLogger("test").makeRecord("test", logging.INFO, __file__, 1, "hello", (), None)
    assert record.__dict__["correlation_id"] == "order-43"
