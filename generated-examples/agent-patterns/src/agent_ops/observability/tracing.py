"""Tracing with OpenTelemetry: off unless OTEL_EXPORTER_OTLP_ENDPOINT is set.

FastAPI's instrumentation opens a span per request. Every send through the port opens a span of its own and writes its
context into the record's headers (W3C traceparent), as aiokafka's instrumentation does: this module wraps the
adapter's `send` itself (no librdkafka instrumentation: see `instrument`). The runner continues the trace:
`continue_trace` records the receive span and makes the record's context current, the handler's span
(`observability.handling`) is its child, and the events the handler emits are sent inside it.
"""

import functools
from collections.abc import Awaitable, Callable, MutableSequence, Sequence
from typing import Any

from fastapi import FastAPI
from opentelemetry import context, propagate, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.propagators.textmap import Getter, Setter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from ..kafka.client import SENDERS
from ..kafka.port import Delivery, Record
from ..settings import Settings

Headers = Sequence[tuple[str, bytes | None]]


class HeaderGetter(Getter[Headers]):
    """Reads W3C trace context from Kafka record headers."""

    def get(self, carrier: Headers, key: str) -> list[str] | None:
        # Whoever wrote the record chose its headers: a null or non-UTF-8 value is no trace context, not an error.
        values = [value.decode(errors="replace") for name, value in carrier if name == key and isinstance(value, bytes)]
        return values or None

    def keys(self, carrier: Headers) -> list[str]:
        return [name for name, _ in carrier]


HEADERS = HeaderGetter()


class HeaderSetter(Setter[MutableSequence[tuple[str, bytes | None]]]):
    """Writes W3C trace context into Kafka record headers."""

    def set(self, carrier: MutableSequence[tuple[str, bytes | None]], key: str, value: str) -> None:
        carrier.append((key, value.encode()))


HEADER_SETTER = HeaderSetter()


def provider_for(settings: Settings) -> TracerProvider | None:
    """An OTLP/HTTP exporting provider when an endpoint is configured, else None: tracing stays off."""
    if not settings.otel_exporter_otlp_endpoint:
        return None
    provider = TracerProvider(resource=Resource.create({"service.name": settings.otel_service_name}))
    endpoint = settings.otel_exporter_otlp_endpoint.rstrip("/") + "/v1/traces"
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    return provider


Send = Callable[..., Awaitable[Delivery]]


def instrument(app: FastAPI, provider: TracerProvider) -> None:
    """Trace the app's requests and every send and receive through the port in this process.

    Not OpenTelemetry's confluent-kafka instrumentation: it traces only producers built after it replaced
    `confluent_kafka.Producer`, or wrapped in its proxy one by one; its consume span reads `traceparent` with a
    getter that fails on a value that is not UTF-8, inside the poll (one such record would stop the runner); and it
    names that span `recv`, the record's trace only linked. Wrapping the port's `send` here traces every producer
    the service has, as aiokafka's instrumentation does on that client."""
    global _tracer
    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider, excluded_urls="health/.*,metrics")
    _tracer = provider.get_tracer(__name__)
    for sender in SENDERS:
        send = vars(sender)["send"]
        if getattr(send, "__wrapped__", None) is None:  # instrumented once per process, like aiokafka's
            setattr(sender, "send", _traced(send))  # noqa: B010


def uninstrument(app: FastAPI) -> None:
    global _tracer
    FastAPIInstrumentor.uninstrument_app(app)
    for sender in SENDERS:
        send = vars(sender)["send"]
        setattr(sender, "send", getattr(send, "__wrapped__", send))  # noqa: B010
    _tracer = None


_tracer: trace.Tracer | None = None


def enabled() -> bool:
    """Whether this process traces: when it does not, the runner skips the per-record trace work."""
    return _tracer is not None


def _traced(send: Send) -> Send:
    """`send` with a span of its own, whose context goes with the record: a copy of its headers gets `traceparent`."""

    @functools.wraps(send)
    async def traced_send(
        producer: Any,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: Headers | None = None,
    ) -> Delivery:
        carrier = list(headers or ())
        if _tracer is not None:
            attributes = {**_about(topic, partition, key), "messaging.operation.name": "send"}
            attributes["messaging.operation.type"] = "publish"
            with _tracer.start_as_current_span(f"{topic} send", kind=trace.SpanKind.PRODUCER, attributes=attributes):
                propagate.inject(carrier, setter=HEADER_SETTER)
        return await send(producer, topic, value, key, partition, timestamp_ms, carrier)

    return traced_send


def _about(topic: str, partition: int | None, key: bytes | None) -> dict[str, str | int]:
    attributes: dict[str, str | int] = {"messaging.system": "kafka", "messaging.destination.name": topic}
    if partition is not None:
        attributes["messaging.destination.partition.id"] = str(partition)
    if key is not None:
        attributes["messaging.kafka.message.key"] = key.decode(errors="replace")
    return attributes


def continue_trace(record: Record) -> None:
    """Make the trace a record's headers carry the current context of the runner's task, until the next record,
    and record its receive span there (aiokafka's instrumentation opens it inside the poll).

    Not detached on purpose: the runner sends the events a message caused, and its dead letter, after the
    handler returned; they belong to the message's trace. Each record replaces the context of the one before."""
    if _tracer is not None:
        extracted = _extracted(record.headers)
        attributes = {**_about(record.topic, record.partition, record.key), "messaging.operation.name": "receive"}
        attributes |= {"messaging.operation.type": "receive", "messaging.kafka.offset": record.offset}
        _tracer.start_span(
            f"{record.topic} receive", context=extracted, kind=trace.SpanKind.CONSUMER, attributes=attributes
        ).end()
        context.attach(extracted)


def _extracted(headers: Headers) -> context.Context:
    try:
        return propagate.extract(headers, getter=HEADERS)
    except Exception:  # a propagator meeting garbage it does not expect: the record starts a trace of its own
        return context.Context()


def continue_in(span: trace.Span) -> None:
    """Make `span` the parent of what the runner sends next for this record (see `continue_trace`)."""
    context.attach(trace.set_span_in_context(span))
