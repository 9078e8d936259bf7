"""The metric functions the publisher and the runner call, without a broker."""

import asyncio
from collections.abc import Sequence

from aiokafka import TopicPartition
from opentelemetry import trace
from prometheus_client import REGISTRY

from order_pipelines.events.catalog import CONSUMED_TOPICS, Topic
from order_pipelines.events.models import Event
from order_pipelines.kafka.consumer import Failed
from order_pipelines.observability import metrics
from order_pipelines.observability.handling import observed
from tests.samples import sample_event

from .test_consumer_runner import SETTINGS, FlakySerde, record, runner


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_send_is_in_flight_until_its_delivery_resolves_then_counted_by_outcome() -> None:
    loop = asyncio.get_running_loop()
    ok: asyncio.Future[object] = loop.create_future()
    failed: asyncio.Future[object] = loop.create_future()
    sent_ok = sample("messaging_client_sent_messages_total", messaging_destination_name="unit", error_type="")
    in_flight = sample("messaging_kafka_producer_in_flight_messages")
    metrics.sending("unit", ok)
    metrics.sending("unit", failed)
    assert sample("messaging_kafka_producer_in_flight_messages") == in_flight + 2
    ok.set_result(None)
    failed.set_exception(TimeoutError())
    await asyncio.sleep(0)  # done callbacks run on the next loop iteration
    assert sample("messaging_kafka_producer_in_flight_messages") == in_flight
    assert sample("messaging_client_sent_messages_total", messaging_destination_name="unit", error_type="") == (
        sent_ok + 1
    )
    assert sample("messaging_client_sent_messages_total", messaging_destination_name="unit", error_type="TimeoutError")
    assert sample(
        "messaging_client_operation_duration_seconds_count",
        messaging_destination_name="unit",
        messaging_operation_name="send",
        error_type="TimeoutError",
    )


def test_lag_follows_the_assignment() -> None:
    def lag(partition: str) -> float | None:
        labels = {"messaging_destination_name": "unit.lag", "messaging_destination_partition_id": partition}
        return REGISTRY.get_sample_value("messaging_kafka_consumer_lag", labels)

    metrics.update_lag({TopicPartition("unit.lag", 0): 5, TopicPartition("unit.lag", 1): 0})
    assert (lag("0"), lag("1")) == (5, 0)
    metrics.update_lag({TopicPartition("unit.lag", 1): 3})
    assert (lag("0"), lag("1")) == (None, 3), "a partition no longer owned drops out"


def test_an_assignment_counts_a_rebalance_and_sets_the_partitions_owned() -> None:
    rebalances = sample("messaging_kafka_consumer_rebalances_total")
    metrics.assigned({TopicPartition("unit.a", 0), TopicPartition("unit.a", 1), TopicPartition("unit.b", 0)})
    metrics.assigned({TopicPartition("unit.a", 2)})
    assert sample("messaging_kafka_consumer_rebalances_total") == rebalances + 2
    assert sample("messaging_kafka_consumer_assigned_partitions", messaging_destination_name="unit.a") == 1
    assert sample("messaging_kafka_consumer_assigned_partitions", messaging_destination_name="unit.b") == 0


async def test_the_runner_counts_retries_and_dead_letters_and_times_each_attempt() -> None:
    topic = CONSUMED_TOPICS[0]
    where = {"messaging_destination_name": topic.name}

    async def failing(topic: Topic, received: Event) -> Sequence[Event]:
        raise RuntimeError("downstream unavailable")

    retries = sample("messaging_process_retries_total", **where)
    dead = sample("messaging_client_consumed_messages_total", **where, outcome="dead_lettered")
    attempts = sample("messaging_process_duration_seconds_count", **where, error_type="RuntimeError")
    handler = observed(failing, trace.NoOpTracer())
    outcome = await runner(FlakySerde(sample_event(topic)), handler)._handle(record(b"fine"))
    assert isinstance(outcome, Failed)
    assert sample("messaging_process_retries_total", **where) == retries + SETTINGS.handler_max_attempts - 1
    assert sample("messaging_client_consumed_messages_total", **where, outcome="dead_lettered") == dead + 1
    assert sample("messaging_process_duration_seconds_count", **where, error_type="RuntimeError") == (
        attempts + SETTINGS.handler_max_attempts
    )
