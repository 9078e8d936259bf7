"""The service's Prometheus metrics, and the small functions the publisher and the consumer runner call.

Names and labels follow the OpenTelemetry semantic conventions for messaging (`messaging.client.sent.messages`
becomes `messaging_client_sent_messages_total`, the attribute `messaging.destination.name` the label
`messaging_destination_name`, `error.type` the label `error_type`, empty on success). What the conventions do
not cover (lag, rebalances, in-flight sends, 503s) is named in the same style under `messaging_kafka_`.
"""

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Collection, Iterator
from typing import Any

from prometheus_client import Counter, Gauge, Histogram, start_http_server

from ..kafka.client import ERRORS
from ..kafka.port import Partition
from ..settings import Settings
from .offsets import OffsetReader

log = logging.getLogger(__name__)

DESTINATION = "messaging_destination_name"
PARTITION = "messaging_destination_partition_id"
# Publishing waits for a broker round trip; handlers run from microseconds to seconds.
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
CONSUMED = Counter(
    "messaging_client_consumed_messages",
    "Records the consumer finished with, by topic and outcome: ok, dead_lettered, duplicate (already processed).",
    [DESTINATION, "outcome"],
)
RETRIES = Counter(
    "messaging_process_retries", "Handler attempts that failed and were retried, by topic.", [DESTINATION]
)
PROCESS_DURATION = Histogram(
    "messaging_process_duration_seconds",
    "Time in the event handler per attempt; error_type is empty when it succeeded.",
    [DESTINATION, "error_type"],
    buckets=LATENCY_BUCKETS,
)
LAG = Gauge(
    "messaging_kafka_consumer_lag",
    "Records between the group's committed offset and the end of each partition this member owns.",
    [DESTINATION, PARTITION],
)
REBALANCES = Counter(
    "messaging_kafka_consumer_rebalances", "Partition assignments this consumer received (one per rebalance)."
)
ASSIGNED = Gauge(
    "messaging_kafka_consumer_assigned_partitions", "Partitions this consumer owns, by topic.", [DESTINATION]
)


@functools.cache
def labelled(metric: Counter | Histogram, *values: str) -> Any:
    """`metric.labels(*values)`, looked up once: `labels` validates and locks on every call, a cost on the hot
    paths, and the series of these metrics are never removed, so a child stays valid for the process's life."""
    return metric.labels(*values)


def sending(topic: str, delivery: "asyncio.Future[Any]") -> None:
    """Count an event handed to the producer: in flight until `delivery` resolves, then sent or failed."""
    delivery.add_done_callback(functools.partial(sent, topic, handed()))


# The in-flight gauge reads a plain count when scraped: the count changes twice per event, on the event loop only,
# and a gauge's inc and dec take a lock each time.
_in_flight = 0
IN_FLIGHT.set_function(lambda: _in_flight)


def handed() -> float:
    """An event handed to the producer: in flight from now until `sent`; returns the time `sent` takes."""
    global _in_flight
    _in_flight += 1
    return time.perf_counter()


def sent(topic: str, started: float, delivery: "asyncio.Future[Any]") -> None:
    """The event `handed` at `started` is acknowledged or failed: `delivery` is done. A caller awaiting the
    delivery anyway calls `handed` and `sent` itself instead of `sending`, sparing the loop a callback per event."""
    global _in_flight
    _in_flight -= 1
    error = "" if not delivery.cancelled() and delivery.exception() is None else error_type(delivery)
    count, duration = _sent_series(topic, error)
    count.inc()
    duration.observe(time.perf_counter() - started)


@functools.cache
def _sent_series(topic: str, error: str) -> tuple[Any, Any]:
    """The two series `sent` updates, looked up together once (see `labelled`)."""
    return labelled(SENT, topic, error), labelled(SEND_DURATION, topic, "send", error)


def error_type(future: "asyncio.Future[Any]") -> str:
    return "CancelledError" if future.cancelled() else type(future.exception()).__name__


def unavailable(topic: str, error: BaseException) -> None:
    """A POST answered 503."""
    UNAVAILABLE.labels(topic, type(error).__name__).inc()


def consumed(topic: str, outcome: str) -> None:
    labelled(CONSUMED, topic, outcome).inc()


def retried(topic: str) -> None:
    labelled(RETRIES, topic).inc()


def handled(topic: str, seconds: float, error: BaseException | None) -> None:
    """One handler attempt; a success finishes the record."""
    labelled(PROCESS_DURATION, topic, "" if error is None else type(error).__name__).observe(seconds)
    if error is None:
        labelled(CONSUMED, topic, "ok").inc()


def assigned(partitions: Collection[Partition]) -> None:
    """A rebalance completed with `partitions` as this consumer's whole assignment."""
    REBALANCES.inc()
    _owned.clear()
    _owned.update(partitions)
    ASSIGNED.clear()
    for topic in {tp.topic for tp in partitions}:
        ASSIGNED.labels(topic).set(sum(1 for tp in partitions if tp.topic == topic))


@contextlib.contextmanager
def served(port: int) -> Iterator[None]:
    """/metrics on `port` while the block runs, for a process without the HTTP API (a worker, a pattern's
    process): entered once its consumer has started, as its pod's readiness probe asks this port."""
    server, thread = start_http_server(port)
    try:
        yield
    finally:
        server.shutdown()
        thread.join()


async def watch_lag(settings: Settings, interval_seconds: float) -> None:
    """Refresh the lag gauge of the partitions this member owns every `interval_seconds`, until cancelled.

    Lag is the group's committed offset to the end of the partition, as the broker has them (Burrow, KEDA and
    `kafka-consumer-groups` read the same): the consumer's own high watermark is only as fresh as its last fetch,
    and a consumer busy with a buffered batch does not fetch."""
    reader = OffsetReader(settings)
    while True:
        try:
            await reader.start()
            break
        except ERRORS.any as error:
            log.warning("lag gauge: no broker yet (%r); retrying", error)
            await asyncio.sleep(interval_seconds)
    try:
        while True:
            try:
                update_lag(await reader.lag(settings.kafka_consumer_group, _owned))
            except ERRORS.any as error:  # the next round tries again; a scrape shows the last values meanwhile
                log.warning("lag gauge: could not read offsets: %r", error)
            await asyncio.sleep(interval_seconds)
    finally:
        await reader.stop()


_owned: set[Partition] = set()
_lag_series: set[tuple[str, str]] = set()


def update_lag(lag: dict[Partition, int]) -> None:
    """Set the gauge. Series are removed one by one, never cleared, so that a scrape in between (the worker serves
    metrics from a thread) never misses a partition still owned."""
    current = {(tp.topic, str(tp.partition)): records for tp, records in lag.items()}
    for topic, partition in _lag_series - set(current):
        LAG.remove(topic, partition)
    for (topic, partition), records in current.items():
        LAG.labels(topic, partition).set(records)
    _lag_series.clear()
    _lag_series.update(current)
