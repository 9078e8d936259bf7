"""The fan-out channels' settings, read from FANOUT_* environment variables (and a `.env` file in development)."""

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class FanoutSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FANOUT_", env_file=".env", extra="ignore")

    max_attempts: int = Field(default=3, ge=1, description="Tries per event and channel before its DLQ.")
    retry_backoff_seconds: float = Field(default=0.2, ge=0, description="First retry delay; doubles each time.")
    poll_timeout_ms: int = Field(default=500, ge=1)
    max_records: int = Field(default=100, ge=1)


@lru_cache
def get_fanout_settings() -> FanoutSettings:
    return FanoutSettings()
