"""Runtime configuration, read from the environment (and a `.env` file in development)."""

from functools import lru_cache
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_client_id: str = "task-intake"

    kafka_create_topics: bool = Field(
        default=True,
        description="Create missing topics at start-up (development); off where Strimzi KafkaTopics own them.",
    )
    kafka_topic_replication_factor: int = Field(default=1, ge=1)

    publish_timeout_seconds: float = Field(
        default=10.0, gt=0, description="How long POST waits for the broker's ack before answering 503."
    )
    max_request_bytes: int = Field(
        default=512 * 1024,
        ge=1024,
        description="Largest request body accepted (413 past it); under the broker's 1 MB message.max.bytes.",
    )
    event_key_max_length: int = Field(default=256, ge=1, description="Longest partition key accepted (422 past it).")
    event_text_max_length: int = Field(default=16_384, ge=1, description="Longest text field accepted (422 past it).")
    ready_timeout_seconds: float = Field(default=2.0, gt=0, description="Bound on the readiness probe's round trip.")
    shutdown_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Bound on flushing unsent records at shutdown (all were answered 503)."
    )
    publish_max_in_flight: int = Field(
        default=1000, ge=1, description="Sends waiting for the broker at once; past it POST answers 503 at once."
    )

    schema_registry_url: str = Field(
        default="http://127.0.0.1:8081", description="A Confluent-API schema registry (Apicurio: .../apis/ccompat/v7)."
    )
    schema_auto_register: bool = Field(
        default=True,
        description="Register unknown local schemas on first use (development); off in production, where "
        "`python -m task_intake.schemas register` runs as a deploy step and events of an unregistered "
        "schema are refused.",
    )
    schema_subject_strategy: Literal["topic", "record", "topic-record"] = "topic-record"
    schema_compatibility: Literal[
        "BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE", "FULL", "FULL_TRANSITIVE", "NONE"
    ] = Field(default="BACKWARD", description="The level `schemas register` sets on each subject.")

    log_level: str = "INFO"

    otel_exporter_otlp_endpoint: str | None = Field(
        default=None,
        description="An OTLP/HTTP collector (e.g. http://otel-collector:4318); tracing is off while unset.",
    )
    otel_service_name: str = Field(default="task-intake", description="The service.name of every span.")


@lru_cache
def get_settings() -> Settings:
    return Settings()
