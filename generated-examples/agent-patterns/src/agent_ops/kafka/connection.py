"""Connection options shared by every client: where the brokers are."""

from typing import Any

from ..settings import Settings


def connection_options(settings: Settings) -> dict[str, Any]:
    return {"bootstrap_servers": settings.kafka_bootstrap_servers, "client_id": settings.kafka_client_id}
