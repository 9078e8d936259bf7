"""Metrics and traces of the real service against the real broker: what a scrape and a trace backend would see."""

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from cert_intake.app import create_app
from cert_intake.events.catalog import TOPICS
from cert_intake.observability import tracing
from tests.samples import ROUTES, sample_event, unique_key

from .service import running_service, service_settings

pytestmark = pytest.mark.integration

TOPIC = TOPICS[0]
ROUTE = ROUTES[TOPIC.name]


def sent(text: str) -> float:
    """Events the broker acknowledged on TOPIC, as scraped."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "messaging_client_sent_messages_total"
        and sample.labels == {"messaging_destination_name": TOPIC.name, "error_type": ""}
    )


async def test_metrics_count_what_was_published(kafka_bootstrap: str, unique: str) -> None:
    async with running_service(service_settings(kafka_bootstrap, unique)) as client:
        before = sent((await client.get("/metrics")).text)
        event = sample_event(TOPIC, key=unique_key(TOPIC))
        assert (await client.post(ROUTE, json=event.model_dump(mode="json"))).status_code == 202
        # The POST answered after the acknowledgement, whose callback counted it.
        assert sent((await client.get("/metrics")).text) == before + 1


@pytest.fixture
def spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


async def test_one_trace_runs_from_the_http_request_to_the_kafka_send(
    kafka_bootstrap: str, unique: str, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans
    settings = service_settings(kafka_bootstrap, unique)
    app = create_app(settings, tracer_provider=provider)
    try:
        async with running_service(settings, app) as client:
            event = sample_event(TOPIC, key=unique_key(TOPIC))
            assert (await client.post(ROUTE, json=event.model_dump(mode="json"))).status_code == 202
    finally:
        tracing.uninstrument(app)
    finished = exporter.get_finished_spans()
    (request,) = [span for span in finished if span.name == f"POST {ROUTE}"]
    (send,) = [span for span in finished if span.name == f"{TOPIC.name} send"]
    assert request.context is not None
    assert send.context is not None
    assert send.context.trace_id == request.context.trace_id
    assert request.parent is None, "the HTTP request starts the trace"
