"""The audit log's settings, read from AUDIT_* environment variables (and a `.env` file in development)."""

from functools import lru_cache

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class AuditSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AUDIT_", env_file=".env", extra="ignore")

    chain_key: SecretStr = Field(
        default=SecretStr("development-only-audit-key"),
        description="HMAC key of the audit log's hash chain: without it no one can forge a link. Set it in production.",
    )
    transactional_id_prefix: str = Field(
        default="agent-ops-audit-sealer-",
        description="The sealer's transactional ids (the KafkaUser's prefix ACL).",
    )
    seal_in_process: bool = Field(
        default=True, description="Run the audit sealer inside this process (development); the chart runs it apart."
    )


@lru_cache
def get_audit_settings() -> AuditSettings:
    return AuditSettings()
