"""Connection options shared by every client: where the brokers are."""

from typing import Any

from ..settings import Settings


def connection_options(settings: Settings) -> dict[str, Any]:
    """librdkafka's configuration properties for the brokers and the client's name."""
    return {"bootstrap.servers": settings.kafka_bootstrap_servers, "client.id": settings.kafka_client_id}
