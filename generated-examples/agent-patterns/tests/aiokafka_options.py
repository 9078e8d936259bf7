"""The service's connection as the tests' own aiokafka clients take it: the service's `connection_options`, aiokafka
being its client too."""

from typing import Any

from agent_ops.kafka.connection import connection_options
from agent_ops.settings import Settings


def aiokafka_options(settings: Settings) -> dict[str, Any]:
    return connection_options(settings)
