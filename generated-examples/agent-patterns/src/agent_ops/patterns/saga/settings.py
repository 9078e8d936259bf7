"""The task_run saga's settings, read from SAGA_* environment variables (and a `.env` file in
development)."""

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class SagaSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SAGA_", env_file=".env", extra="ignore")

    in_process: bool = Field(
        default=True,
        description="Run the saga orchestrator inside this process (development); the chart runs it apart.",
    )
    transactional_id_prefix: str = Field(
        default="agent-ops-saga-task-run-",
        description="The orchestrator's transactional ids, one per partition (the KafkaUser's prefix ACL).",
    )
    concurrency: int = Field(default=100, ge=1, description="Steps run at once per commands partition.")
    max_records: int = Field(default=500, ge=1, description="Commands per partition and transaction.")
    compensation_max_attempts: int = Field(
        default=5, ge=1, description="Tries of a compensation before the saga is marked failed (a human's turn)."
    )
    retry_backoff_seconds: float = Field(
        default=1.0, ge=0, description="Delay before a compensation's second try; doubles each time."
    )
    finished_retention_seconds: float = Field(
        default=604800.0,
        ge=0,
        description="How long a finished saga stays in the state topic (and `saga show`, and a repeated start"
        " is ignored) before it is tombstoned.",
    )
    commands_retention_seconds: float = Field(
        default=604800.0,
        gt=0,
        description="The commands topic's retention.ms, in seconds: a command pending longer is issued again.",
    )


@lru_cache
def get_saga_settings() -> SagaSettings:
    return SagaSettings()
