"""The HTTP contract without a broker: the publisher is an in-memory fake."""

from fastapi.testclient import TestClient

from agent_tasks.api.dependencies import get_publisher
from agent_tasks.events.catalog import TOPICS, topic_for
from agent_tasks.events.models import Event
from agent_tasks.kafka.producer import Published, PublishError
from agent_tasks.main import create_app
from agent_tasks.settings import Settings
from tests.samples import ROUTES, sample_event


class RecordingPublisher:
    def __init__(self, fail: bool = False) -> None:
        self.published: list[Event] = []
        self.fail = fail

    async def publish(self, event: Event) -> Published:
        if self.fail:
            raise PublishError("broker unreachable")
        self.published.append(event)
        return Published(str(event.event_id), topic_for(event).name, 0, len(self.published) - 1)


def client_with(publisher: RecordingPublisher) -> TestClient:
    app = create_app(Settings())
    app.dependency_overrides[get_publisher] = lambda: publisher
    return TestClient(app)  # not entered: no lifespan, so no broker


def test_a_valid_event_is_published_and_accepted() -> None:
    publisher = RecordingPublisher()
    client = client_with(publisher)
    for topic in TOPICS:
        for event_type in topic.event_types:
            event = sample_event(topic, event_type)
            response = client.post(ROUTES[topic.name], json=event.model_dump(mode="json"))
            assert response.status_code == 202, response.text
            assert response.json()["event_id"] == str(event.event_id)
            assert response.json()["topic"] == topic.name
            assert publisher.published[-1] == event


def test_an_invalid_body_gets_422_and_never_reaches_kafka() -> None:
    publisher = RecordingPublisher()
    client = client_with(publisher)
    topic = TOPICS[0]
    valid = sample_event(topic).model_dump(mode="json")
    missing_key = {k: v for k, v in valid.items() if k != topic.key_field}
    for body in [missing_key, valid | {"type": "NoSuchEvent"}, valid | {"unexpected": True}, "not an object"]:
        response = client.post(ROUTES[topic.name], json=body)
        assert response.status_code == 422, body
    assert publisher.published == []


def test_an_unacknowledged_publish_gets_503_with_retry_after_and_the_event_id_to_retry_with() -> None:
    client = client_with(RecordingPublisher(fail=True))
    topic = TOPICS[0]
    event = sample_event(topic).model_dump(mode="json")
    del event["event_id"]  # the service picks one: the client learns it only from the answer
    response = client.post(ROUTES[topic.name], json=event)
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0
    event_id = response.json()["event_id"]
    retry = client_with(RecordingPublisher()).post(ROUTES[topic.name], json=event | {"event_id": event_id})
    assert retry.status_code == 202, retry.text
    assert retry.json()["event_id"] == event_id


def test_liveness_does_not_need_kafka() -> None:
    assert client_with(RecordingPublisher()).get("/health/live").status_code == 200
