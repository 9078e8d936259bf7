"""Runtime configuration, read from the environment (and a `.env` file in development). Each pattern reads
its own settings, with its own prefix, in its package."""

from functools import lru_cache
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_client_id: str = "agent-ops"
    kafka_consumer_group: str = "agent-task-workers"

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
    handler_max_attempts: int = Field(default=3, ge=1, description="Tries per message before it is dead-lettered.")
    handler_retry_backoff_seconds: float = Field(default=0.2, ge=0, description="First retry delay; doubles each time.")
    handler_timeout_seconds: float = Field(
        default=600.0, gt=0, description="Bound on one handler attempt; a timed-out attempt counts as a failure."
    )
    consumer_concurrency: int = Field(
        default=1,
        ge=1,
        description="Records of one partition handled at once, never two of one key and each key in offset order; "
        "1 handles a partition's records one after another.",
    )
    consumer_poll_timeout_ms: int = Field(default=500, ge=1)
    consumer_max_records: int = Field(
        default=100, ge=1, description="Records per fetch; a partition with this many waiting is paused."
    )
    consumer_max_poll_interval_ms: int = Field(
        default=300_000,
        ge=1,
        description="aiokafka leaves the group if not polled for this long; the runner polls while handlers run.",
    )
    consumer_revoke_wait_seconds: float = Field(
        default=5.0,
        ge=0,
        description="On a rebalance, how long revoked partitions' in-flight handlers may finish before they are "
        "abandoned (left uncommitted); the rebalance waits this long at most.",
    )
    consumer_session_timeout_ms: int = Field(default=45_000, ge=1)
    consumer_heartbeat_interval_ms: int = Field(default=3_000, ge=1)
    shutdown_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Bound on flushing unsent records at shutdown (all were answered 503)."
    )
    consumer_enabled: bool = Field(default=True, description="Run the consumer in this process.")
    publish_max_in_flight: int = Field(
        default=1000, ge=1, description="Sends waiting for the broker at once; past it POST answers 503 at once."
    )
    kafka_transactional_id_prefix: str = Field(
        default="agent-ops-",
        description="Starts every transactional id (the KafkaUser's prefix ACL).",
    )
    transaction_timeout_ms: int = Field(
        default=60_000, ge=1000, description="The broker aborts a transaction left open longer (a hung process)."
    )
    transaction_interval_ms: int = Field(
        default=100,
        ge=0,
        description="Least time between the starts of a partition's transactions (Kafka Streams' commit interval "
        "under exactly-once): under load, records handled meanwhile share one transaction.",
    )
    transaction_max_records: int = Field(
        default=1000, ge=1, description="Handled records one transaction writes at most; more wait for the next."
    )

    schema_registry_url: str = Field(
        default="http://127.0.0.1:8081", description="A Confluent-API schema registry (Apicurio: .../apis/ccompat/v7)."
    )
    schema_auto_register: bool = Field(
        default=True,
        description="Register unknown local schemas on first use (development); off in production, where "
        "`python -m agent_ops.schema_registry register` runs as a deploy step and events of an unregistered "
        "schema are refused.",
    )
    schema_subject_strategy: Literal["topic", "record", "topic-record"] = "topic-record"
    schema_compatibility: Literal[
        "BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE", "FULL", "FULL_TRANSITIVE", "NONE"
    ] = Field(default="BACKWARD", description="The level `schemas register` sets on each subject.")

    log_level: str = "INFO"

    metrics_port: int = Field(
        default=9464,
        ge=1,
        le=65535,
        description="Where a process without the HTTP API serves /metrics (the web app serves it itself).",
    )
    metrics_lag_interval_seconds: float = Field(
        default=5.0, gt=0, description="How often the consumer lag gauge is refreshed from the broker."
    )

    otel_exporter_otlp_endpoint: str | None = Field(
        default=None,
        description="An OTLP/HTTP collector (e.g. http://otel-collector:4318); tracing is off while unset.",
    )
    otel_service_name: str = Field(
        default="agent-ops",
        description="The service.name of every span.",
    )


@lru_cache
def get_settings() -> Settings:
    return Settings()
