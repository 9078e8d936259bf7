"""A request's correlation id follows its work through the broker: the event, the handler's log lines, the
dead letter."""

import logging
import re

import pytest

from order_pipelines.correlation import HTTP_HEADER
from order_pipelines.events.catalog import CONSUMED_TOPICS
from order_pipelines.events.models import Event
from order_pipelines.handlers import EventHandlers
from tests.samples import ROUTES, sample_event, unique_key

from .kafka_io import find_record
from .service import running_service, service_settings

pytestmark = pytest.mark.integration

TOPIC = CONSUMED_TOPICS[0]


async def test_a_requests_correlation_id_reaches_its_event_the_handlers_logs_and_the_dead_letter(
    kafka_bootstrap: str, unique: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    event = sample_event(TOPIC, key=unique_key(TOPIC))
    handler_name = "on_" + re.sub(r"(?<!^)(?=[A-Z])", "_", type(event).__name__).lower()
    original = getattr(EventHandlers, handler_name)
    request_id = f"req-{unique}"

    async def failing_for_this_event(self: EventHandlers, received: Event) -> list[Event]:
        if received.event_id != event.event_id:
            emitted: list[Event] = await original(self, received)
            return emitted
        logging.getLogger("tests.handler").warning("handling %s", received.event_id)
        raise RuntimeError("downstream unavailable")

    monkeypatch.setattr(EventHandlers, handler_name, failing_for_this_event)
    caplog.set_level(logging.INFO)
    async with running_service(service_settings(kafka_bootstrap, unique, handler_max_attempts=1)) as client:
        response = await client.post(
            ROUTES[TOPIC.name], json=event.model_dump(mode="json"), headers={HTTP_HEADER: request_id}
        )
        assert response.status_code == 202, response.text
        assert response.headers[HTTP_HEADER] == request_id
        dead = await find_record(kafka_bootstrap, TOPIC.dead_letter, TOPIC.key_of(event), within=60)
    published = await find_record(kafka_bootstrap, TOPIC.name, TOPIC.key_of(event))
    assert dict(published.headers)["correlation-id"] == request_id.encode()
    assert dict(published.headers)["causation-id"] == request_id.encode()
    assert dict(dead.headers)["correlation-id"] == request_id.encode()
    handler_lines = [r for r in caplog.records if r.name == "tests.handler"]
    assert handler_lines
    assert all(r.__dict__.get("correlation_id") == request_id for r in handler_lines)
