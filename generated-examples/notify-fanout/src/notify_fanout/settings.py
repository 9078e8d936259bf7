"""Runtime configuration, read from the environment (and a `.env` file in development)."""

from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_client_id: str = "notify-fanout"
    kafka_consumer_group: str = "notification-senders"
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: str | None = None
    kafka_ssl_certfile: str | None = None
    kafka_ssl_keyfile: str | None = None

    kafka_create_topics: bool = Field(
        default=True,
        description="Create missing topics at start-up (development); off where Strimzi KafkaTopics own them.",
    )
    kafka_topic_replication_factor: int = Field(default=1, ge=1)

    publish_timeout_seconds: float = Field(
        default=10.0, gt=0, description="How long POST waits for the broker's ack before answering 503."
    )
    ready_timeout_seconds: float = Field(default=2.0, gt=0, description="Bound on the readiness probe's round trip.")
    handler_max_attempts: int = Field(default=3, ge=1, description="Tries per message before it is dead-lettered.")
    handler_retry_backoff_seconds: float = Field(default=0.2, ge=0, description="First retry delay; doubles each time.")
    consumer_poll_timeout_ms: int = Field(default=500, ge=1)
    consumer_max_records: int = Field(default=100, ge=1)
    consumer_session_timeout_ms: int = Field(default=45_000, ge=1)
    consumer_heartbeat_interval_ms: int = Field(default=3_000, ge=1)
    shutdown_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Bound on flushing unsent records at shutdown (all were answered 503)."
    )
    consumer_enabled: bool = Field(default=True, description="Run the consumer in this process.")
    publish_max_in_flight: int = Field(
        default=1000, ge=1, description="Sends waiting for the broker at once; past it POST answers 503 at once."
    )
    processed_events_path: str | None = Field(
        default=None, description="SQLite file of processed event ids, kept across restarts; in memory if unset."
    )
    fanout_max_attempts: int = Field(default=3, ge=1, description="Tries per event and channel before its DLQ.")
    fanout_retry_backoff_seconds: float = Field(default=0.2, ge=0, description="First retry delay; doubles each time.")
    fanout_poll_timeout_ms: int = Field(default=500, ge=1)
    fanout_max_records: int = Field(default=100, ge=1)

    schema_registry_url: str = Field(
        default="http://127.0.0.1:8081", description="A Confluent-API schema registry (Apicurio: .../apis/ccompat/v7)."
    )
    schema_auto_register: bool = Field(
        default=True,
        description="Register unknown local schemas on first use (development); off in production, where "
        "`python -m notify_fanout.schemas register` runs as a deploy step and events of an unregistered "
        "schema are refused.",
    )
    schema_subject_strategy: Literal["topic", "record", "topic-record"] = "topic-record"
    schema_compatibility: Literal[
        "BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE", "FULL", "FULL_TRANSITIVE", "NONE"
    ] = Field(default="BACKWARD", description="The level `schemas register` sets on each subject.")

    log_level: str = "INFO"

    metrics_port: int = Field(
        default=9464, ge=1, le=65535, description="Where the worker serves /metrics (the web app serves it itself)."
    )
    metrics_lag_interval_seconds: float = Field(
        default=5.0, gt=0, description="How often the consumer lag gauge is refreshed from the broker."
    )

    otel_exporter_otlp_endpoint: str | None = Field(
        default=None,
        description="An OTLP/HTTP collector (e.g. http://otel-collector:4318); tracing is off while unset.",
    )
    otel_service_name: str = Field(default="notify-fanout", description="The service.name of every span.")


@lru_cache
def get_settings() -> Settings:
    return Settings()
