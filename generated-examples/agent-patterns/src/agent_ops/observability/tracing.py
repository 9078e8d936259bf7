"""Tracing with OpenTelemetry: off unless OTEL_EXPORTER_OTLP_ENDPOINT is set.

FastAPI's instrumentation opens a span per request. aiokafka's opens one per send and writes its context into
the record's headers (W3C traceparent). Its receive span closes inside `getmany`, before any handler runs, so the
runner continues the trace itself: `continue_trace` makes the record's context current, the handler's span
(`observability.handling`) is its child, and the events the handler emits are sent inside it.
"""

from collections.abc import Sequence

from fastapi import FastAPI
from opentelemetry import context, propagate, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.aiokafka import AIOKafkaInstrumentor
from opentelemetry.instrumentation.aiokafka import utils as aiokafka_instrumentation
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.propagators.textmap import Getter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from ..kafka.port import Record
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


def provider_for(settings: Settings) -> TracerProvider | None:
    """An OTLP/HTTP exporting provider when an endpoint is configured, else None: tracing stays off."""
    if not settings.otel_exporter_otlp_endpoint:
        return None
    provider = TracerProvider(resource=Resource.create({"service.name": settings.otel_service_name}))
    endpoint = settings.otel_exporter_otlp_endpoint.rstrip("/") + "/v1/traces"
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    return provider


def instrument(app: FastAPI, provider: TracerProvider) -> None:
    """Trace the app's requests and every aiokafka send and receive in this process (aiokafka's are global)."""
    global _tracing
    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider, excluded_urls="health/.*,metrics")
    kafka = AIOKafkaInstrumentor()
    if not kafka.is_instrumented_by_opentelemetry:
        kafka.instrument(tracer_provider=provider)
    # Its receive span reads each polled record's trace context with a getter that decodes header values as UTF-8,
    # inside `getmany`: one record with a garbled `traceparent` would fail every poll and stop the runner. Ours
    # takes such a header for no context.
    aiokafka_instrumentation._aiokafka_getter = HEADERS  # type: ignore[assignment]
    _tracing = True


def uninstrument(app: FastAPI) -> None:
    global _tracing
    FastAPIInstrumentor.uninstrument_app(app)
    AIOKafkaInstrumentor().uninstrument()
    _tracing = False


_tracing = False


def enabled() -> bool:
    """Whether this process traces: when it does not, the runner skips the per-record trace work."""
    return _tracing


def continue_trace(record: Record) -> None:
    """Make the trace a record's headers carry the current context of the runner's task, until the next record.

    Not detached on purpose: the runner sends the events a message caused, and its dead letter, after the
    handler returned; they belong to the message's trace. Each record replaces the context of the one before."""
    if _tracing:
        context.attach(_extracted(record.headers))


def _extracted(headers: Headers) -> context.Context:
    try:
        return propagate.extract(headers, getter=HEADERS)
    except Exception:  # a propagator meeting garbage it does not expect: the record starts a trace of its own
        return context.Context()


def continue_in(span: trace.Span) -> None:
    """Make `span` the parent of what the runner sends next for this record (see `continue_trace`)."""
    context.attach(trace.set_span_in_context(span))
