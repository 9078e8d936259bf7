"""Every route fuzzed from the service's own OpenAPI document, on the real app (lifespan included) and broker: no
input gets a 500, every answer is one the document declares, and only a request answered 202 reaches Kafka."""

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings

from agent_ops.events.catalog import TOPICS
from agent_ops.kafka.admin import ensure_topics
from agent_ops.main import chosen_plugins, create_app
from agent_ops.plugins import chosen
from agent_ops.settings import Settings
from tests.patterns import published_topics, quieted

from .kafka_io import end_offsets, records_since
from .service import service_settings

pytestmark = pytest.mark.integration

# Enough to walk each body's fields through their edge cases, few enough to keep a route to a few seconds.
EXAMPLES_PER_ROUTE = 40

# The document needs no broker. (Loading it lazily from a fixture fails on pytest 9.2: schemathesis 4.32 reads a
# private attribute pytest dropped.)
schema = schemathesis.openapi.from_dict(create_app(Settings()).openapi())


@pytest.fixture
def app(kafka_bootstrap: str, unique: str) -> FastAPI:
    """The app that answers each case over ASGI: schemathesis enters its lifespan and leaves it after the test."""
    # No consumer: what the topics gain during the test is what HTTP published, nothing a handler emitted.
    configured = service_settings(kafka_bootstrap, unique, consumer_enabled=False)
    # Nor a pattern's own process inside the app's (each pattern's module in tests/patterns says why): nothing it
    # emitted either, and no readiness of its own the document leaves out.
    return create_app(configured, plugins=quieted(chosen_plugins()))


@pytest.fixture
def accepted(kafka_bootstrap: str) -> Iterator[set[tuple[str, int, int]]]:
    """Where each 202 said its event went; after the test, the topics must have gained exactly those records."""
    watched = [(topic.name, topic.partitions) for topic in TOPICS]
    # The app's start-up creates the topics (this may be the first test on a fresh stack), and a pattern's route may
    # publish on one of the pattern's own: create them first, to read their ends.
    published = [topic for topic in chosen(chosen_plugins()).topics if topic.name in published_topics()]
    asyncio.run(ensure_topics(service_settings(kafka_bootstrap, "fuzz"), published))
    watched += [(topic.name, topic.partitions) for topic in published]
    starts = {
        tp: offset
        for name, partitions in watched
        for tp, offset in asyncio.run(end_offsets(kafka_bootstrap, name, partitions)).items()
    }
    answered: set[tuple[str, int, int]] = set()
    yield answered
    appended = {(r.topic, r.partition, r.offset) for r in asyncio.run(records_since(kafka_bootstrap, starts))}
    assert appended == answered, f"records no 202 announced: {sorted(appended - answered)}"


@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_ROUTE, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_breaks_the_api_or_reaches_kafka_unanswered(
    case: schemathesis.Case[Any], app: FastAPI, accepted: set[tuple[str, int, int]]
) -> None:
    response = case.call(app=app)
    if response.status_code == 202:
        body = response.json()
        accepted.add((body["topic"], body["partition"], body["offset"]))
    # Every default check: no 5xx, only documented statuses, headers and bodies, invalid input refused.
    case.validate_response(response)
