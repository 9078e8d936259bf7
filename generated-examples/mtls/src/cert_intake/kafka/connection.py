"""Connection options shared by every client: where the brokers are and how the service proves who it is."""

import asyncio
import logging
import ssl
from typing import Any

from aiokafka.conn import create_conn
from aiokafka.errors import KafkaError
from aiokafka.helpers import create_ssl_context

from ..settings import Settings

log = logging.getLogger(__name__)


class KafkaCredentialsError(Exception):
    """The service cannot prove who it is to Kafka: missing or refused credentials, or an untrusted broker."""


def connection_options(settings: Settings) -> dict[str, Any]:
    if not (settings.kafka_ssl_certfile and settings.kafka_ssl_keyfile):
        raise KafkaCredentialsError(
            "KAFKA_SSL_CERTFILE and KAFKA_SSL_KEYFILE must name the service's client certificate and key "
            "(on Kubernetes, keys `user.crt` and `user.key` of the KafkaUser's Secret)"
        )
    return {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "client_id": settings.kafka_client_id,
        "security_protocol": "SSL",
        "ssl_context": create_ssl_context(
            cafile=settings.kafka_ssl_cafile, certfile=settings.kafka_ssl_certfile, keyfile=settings.kafka_ssl_keyfile
        ),
    }


async def verify_credentials(settings: Settings, timeout_seconds: float = 10) -> None:
    """Authenticate once before any client starts. aiokafka only logs a refused login and then raises "Unable to
    bootstrap"; this raises the cause instead. A broker that cannot be reached is left to the clients' retries."""
    options = connection_options(settings)
    options.pop("bootstrap_servers")
    refusals: list[str] = []
    for server in settings.kafka_bootstrap_servers.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            async with asyncio.timeout(timeout_seconds):
                connection = await create_conn(host, int(port), **options)
        except (ssl.SSLError, KafkaError) as error:
            refusals.append(f"{server}: {type(error).__name__}: {error}")
            continue
        except (OSError, TimeoutError) as error:
            log.warning("Kafka at %s not reachable to check credentials: %s", server, error)
            continue
        connection.close()
        return
    if refusals:
        who = f"the client certificate {settings.kafka_ssl_certfile}"
        raise KafkaCredentialsError(
            f"Kafka refused {who}: wrong credentials, an unknown user or an untrusted broker certificate. "
            + "; ".join(refusals)
        )
