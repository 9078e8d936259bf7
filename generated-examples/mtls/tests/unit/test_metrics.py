"""The metric functions the publisher and the runner call, without a broker."""

import asyncio

from prometheus_client import REGISTRY

from cert_intake.observability import metrics


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
