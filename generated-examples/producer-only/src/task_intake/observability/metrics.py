"""The service's Prometheus metrics, and the small functions the publisher call.

Names and labels follow the OpenTelemetry semantic conventions for messaging (`messaging.client.sent.messages`
becomes `messaging_client_sent_messages_total`, the attribute `messaging.destination.name` the label
`messaging_destination_name`, `error.type` the label `error_type`, empty on success). What the conventions do
not cover (in-flight sends, 503s) is named in the same style under `messaging_kafka_`.
"""

import asyncio
import functools
import time
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

DESTINATION = "messaging_destination_name"
# Publishing waits for a broker round trip.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

SENT = Counter(
    "messaging_client_sent_messages",
    "Events sent to Kafka, by topic; error_type is empty when the broker acknowledged.",
    [DESTINATION, "error_type"],
)
SEND_DURATION = Histogram(
    "messaging_client_operation_duration_seconds",
    "From handing an event to the producer to the broker's acknowledgement (or failure).",
    [DESTINATION, "messaging_operation_name", "error_type"],
    buckets=LATENCY_BUCKETS,
)
IN_FLIGHT = Gauge(
    "messaging_kafka_producer_in_flight_messages", "Events sent to the producer and not yet acknowledged."
)
UNAVAILABLE = Counter(
    "messaging_kafka_publish_unavailable",
    "POSTs answered 503 (Retry-After), by topic and reason: backpressure, no ack in time, registry away.",
    [DESTINATION, "reason"],
)


@functools.cache
def labelled(metric: Counter | Histogram, *values: str) -> Any:
    """`metric.labels(*values)`, looked up once: `labels` validates and locks on every call, a cost on the hot
    paths, and the series of these metrics are never removed, so a child stays valid for the process's life."""
    return metric.labels(*values)


def sending(topic: str, delivery: "asyncio.Future[Any]") -> None:
    """Count an event handed to the producer: in flight until `delivery` resolves, then sent or failed."""
    delivery.add_done_callback(functools.partial(sent, topic, handed()))


def handed() -> float:
    """An event handed to the producer: in flight from now until `sent`; returns the time `sent` takes."""
    IN_FLIGHT.inc()
    return time.perf_counter()


def sent(topic: str, started: float, delivery: "asyncio.Future[Any]") -> None:
    """The event `handed` at `started` is acknowledged or failed: `delivery` is done. A caller awaiting the
    delivery anyway calls `handed` and `sent` itself instead of `sending`, sparing the loop a callback per event."""
    IN_FLIGHT.dec()
    error = "" if not delivery.cancelled() and delivery.exception() is None else error_type(delivery)
    labelled(SENT, topic, error).inc()
    labelled(SEND_DURATION, topic, "send", error).observe(time.perf_counter() - started)


def error_type(future: "asyncio.Future[Any]") -> str:
    return "CancelledError" if future.cancelled() else type(future.exception()).__name__


def unavailable(topic: str, error: BaseException) -> None:
    """A POST answered 503."""
    UNAVAILABLE.labels(topic, type(error).__name__).inc()
