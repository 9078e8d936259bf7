"""Metrics and traces of the real service against the real broker: what a scrape and a trace backend would see."""

import asyncio
import os
import signal
import socket
import sys
from collections.abc import Iterator

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from agent_ops.events.catalog import CONSUMED_TOPICS
from agent_ops.kafka.client import plain_producer
from agent_ops.main import create_app
from agent_ops.observability import tracing
from tests.samples import ROUTES, sample_event, unique_key

from .service import eventually, running_service, service_settings

pytestmark = pytest.mark.integration

TOPIC = CONSUMED_TOPICS[0]
ROUTE = ROUTES[TOPIC.name]


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a Prometheus text exposition, keyed by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(scraped: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return scraped.get((name, frozenset(labels.items())), 0.0)


async def test_metrics_count_what_was_published_consumed_and_lagging(kafka_bootstrap: str, unique: str) -> None:
    key = unique_key(TOPIC)
    settings = service_settings(kafka_bootstrap, unique, metrics_lag_interval_seconds=0.2)
    async with running_service(settings) as client:
        before = samples((await client.get("/metrics")).text)
        assert (await client.post(ROUTE, json=sample_event(TOPIC, key=key).model_dump(mode="json"))).status_code == 202
        await eventually(lambda: consumed(client, key))

        async def counted() -> bool:
            after = samples((await client.get("/metrics")).text)
            where = {"messaging_destination_name": TOPIC.name}
            sent = "messaging_client_sent_messages_total"
            ok = "messaging_client_consumed_messages_total"
            timed = "messaging_client_operation_duration_seconds_count"
            lag = {
                labels
                for (name, labels) in after
                if name == "messaging_kafka_consumer_lag" and ("messaging_destination_name", TOPIC.name) in labels
            }
            return (
                value(after, sent, **where, error_type="") > value(before, sent, **where, error_type="")
                and value(after, ok, **where, outcome="ok") > value(before, ok, **where, outcome="ok")
                and value(after, timed, **where, messaging_operation_name="send", error_type="") > 0
                and value(after, "messaging_kafka_consumer_assigned_partitions", **where) == TOPIC.partitions
                and len(lag) == TOPIC.partitions
            )

        await eventually(counted)


async def consumed(client: httpx.AsyncClient, key: str) -> bool:
    return (await client.get(f"{ROUTE}/{key}")).status_code == 200


@pytest.fixture
def spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


async def test_one_trace_runs_from_the_http_request_through_kafka_to_the_handler_and_what_it_emits(
    kafka_bootstrap: str, unique: str, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans
    key = unique_key(TOPIC)
    event = sample_event(TOPIC, key=key)
    settings = service_settings(kafka_bootstrap, unique)
    app = create_app(settings, tracer_provider=provider)
    try:
        async with running_service(settings, app) as client:
            assert (await client.post(ROUTE, json=event.model_dump(mode="json"))).status_code == 202
            await eventually(lambda: consumed(client, key))

            def handled() -> list[ReadableSpan]:
                return [
                    span
                    for span in exporter.get_finished_spans()
                    if span.name == f"{TOPIC.name} process"
                    and span.attributes is not None
                    and span.attributes.get("messaging.message.id") == str(event.event_id)
                ]

            await eventually(lambda: asyncio.sleep(0, bool(handled())))
            emitted = "agent.task.history send"
            await eventually(
                lambda: asyncio.sleep(0, any(span.name == emitted for span in exporter.get_finished_spans()))
            )
    finally:
        tracing.uninstrument(app)
    (process,) = handled()
    assert process.context is not None
    assert process.parent is not None
    trace_id = process.context.trace_id
    same_trace = [span for span in exporter.get_finished_spans() if span.context and span.context.trace_id == trace_id]
    names = {span.name for span in same_trace}
    # The HTTP request (FastAPI), the send it made, the handler's span, all in one trace.
    assert f"POST {ROUTE}" in names, names
    assert f"{TOPIC.name} send" in names, names
    assert f"{TOPIC.name} receive" in names, names
    (request,) = [span for span in same_trace if span.name == f"POST {ROUTE}"]
    assert request.parent is None, "the HTTP request starts the trace"
    # What the handler emitted is sent inside the handler's span.
    (send_emitted,) = [span for span in same_trace if span.name == emitted]
    assert send_emitted.parent is not None
    assert send_emitted.parent.span_id == process.context.span_id


async def test_a_record_with_a_garbled_traceparent_stops_no_traced_runner(
    kafka_bootstrap: str, unique: str, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, _ = spans
    key = unique_key(TOPIC)
    settings = service_settings(kafka_bootstrap, unique)
    app = create_app(settings, tracer_provider=provider)
    try:
        async with running_service(settings, app) as client:
            producer = plain_producer(settings)
            await producer.start()
            try:
                # Read while polling, before any handler sees the record: then dead-lettered as no event at all.
                garbled = [("traceparent", b"\xff\xfe not utf-8")]
                await (await producer.send(TOPIC.name, b"\x00", key=key.encode(), headers=garbled))
            finally:
                await producer.stop()
            event = sample_event(TOPIC, key=key)  # same key, so the same partition, after the garbled record
            assert (await client.post(ROUTE, json=event.model_dump(mode="json"))).status_code == 202
            await eventually(lambda: consumed(client, key))
    finally:
        tracing.uninstrument(app)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_the_worker_serves_metrics_on_a_port_of_its_own(kafka_bootstrap: str, unique: str) -> None:
    port = free_port()
    settings = service_settings(kafka_bootstrap, unique)
    environment = os.environ | {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "SCHEMA_REGISTRY_URL": settings.schema_registry_url,
        "KAFKA_CONSUMER_GROUP": settings.kafka_consumer_group,
        "METRICS_PORT": str(port),
    }
    worker = await asyncio.create_subprocess_exec(sys.executable, "-m", "agent_ops", "worker", env=environment)
    try:
        async with httpx.AsyncClient() as client:

            async def assigned() -> bool:
                try:
                    response = await client.get(f"http://127.0.0.1:{port}/metrics")
                except httpx.TransportError:
                    return False
                scraped = samples(response.text)
                where = {"messaging_destination_name": TOPIC.name}
                return value(scraped, "messaging_kafka_consumer_assigned_partitions", **where) == TOPIC.partitions

            await eventually(assigned, within=60)
    finally:
        worker.send_signal(signal.SIGTERM)
        async with asyncio.timeout(60):
            assert await worker.wait() == 0
