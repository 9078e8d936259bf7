"""The service's connection as the tests' own aiokafka clients take it: the service's settings in aiokafka's
terms, beside the librdkafka properties the service itself connects with."""

from typing import Any

from agent_ops.settings import Settings


def aiokafka_options(settings: Settings) -> dict[str, Any]:
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "client_id": settings.kafka_client_id,
    }
    return options
