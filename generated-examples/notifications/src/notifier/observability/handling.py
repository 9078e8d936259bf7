"""The handler as the runner sees it, measured (duration, outcome) and, when the process traces, traced (a span
per attempt)."""

import time
from collections.abc import Sequence

from opentelemetry import trace

from ..events.catalog import Topic
from ..events.models import Event
from ..kafka.consumer import Handler
from . import metrics, tracing


def observed(handler: Handler, tracer: trace.Tracer | None) -> Handler:
    """`handler`, measured; traced too when `tracer` is given (None: this process does not trace)."""

    async def measure(topic: Topic, event: Event) -> Sequence[Event]:
        started = time.perf_counter()
        try:
            emitted = await handler(topic, event)
        except Exception as error:
            metrics.handled(topic.name, time.perf_counter() - started, error)
            raise
        metrics.handled(topic.name, time.perf_counter() - started, None)
        return emitted

    if tracer is None:
        return measure

    async def trace_and_measure(topic: Topic, event: Event) -> Sequence[Event]:
        # A child of the record's trace, which the runner made current (tracing.continue_trace).
        span = tracer.start_span(
            f"{topic.name} process",
            kind=trace.SpanKind.CONSUMER,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.name": "process",
                "messaging.destination.name": topic.name,
                "messaging.message.id": str(event.event_id),
            },
        )
        try:
            with trace.use_span(span, end_on_exit=True):
                return await measure(topic, event)
        finally:
            # The runner sends what this attempt emitted (or its dead letter) right after: under this span.
            tracing.continue_in(span)

    return trace_and_measure
