"""The database's settings, read from DATABASE_* environment variables and KAFKA_CONNECT_URL (and a `.env` file in
development)."""

from functools import lru_cache

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class DatabaseSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DATABASE_", env_file=".env", extra="ignore", populate_by_name=True)

    url: SecretStr | None = Field(
        default=None,
        description="The service's PostgreSQL (postgresql://user:password@host:port/database), a secret: "
        "where POST writes the outbox, what `migrate` migrates and the connectors capture.",
    )
    timeout_seconds: float = Field(
        default=5.0, gt=0, description="Bound on connecting to the database and on one transaction (503 past it)."
    )
    pool_size: int = Field(default=20, ge=1, description="Connections to the database: one per POST in hand.")
    kafka_connect_url: str = Field(
        default="http://127.0.0.1:8083",
        validation_alias=AliasChoices("KAFKA_CONNECT_URL", "kafka_connect_url"),
        description="The Kafka Connect REST API that `connect register` registers the Debezium connectors on.",
    )


@lru_cache
def get_database_settings() -> DatabaseSettings:
    return DatabaseSettings()
