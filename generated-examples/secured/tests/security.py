"""The secured stack as a cluster would be: the service's topics and its user with the ACLs of its KafkaUser
(deploy/strimzi/base/kafka-user.yaml, the manifest Strimzi applies), set up by the stack's admin."""

import asyncio
import os
import secrets
import time
from pathlib import Path
from typing import Any

import yaml
from confluent_kafka import KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # re-exported, but no __all__ says so
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)
from pydantic import SecretStr

from secure_ledger.kafka.admin import ensure_topics
from secure_ledger.kafka.connection import connection_options
from secure_ledger.settings import Settings

PROJECT = Path(__file__).resolve().parents[1]
KAFKA_USER = PROJECT / "deploy" / "strimzi" / "base" / "kafka-user.yaml"
STACK_SETTINGS = (
    "KAFKA_BOOTSTRAP_SERVERS",
    "SCHEMA_REGISTRY_URL",
    "KAFKA_SSL_CAFILE",
    "KAFKA_ADMIN_USERNAME",
    "KAFKA_ADMIN_PASSWORD",
)
"""What `kafka_stack.py up --secure` prints, and what a caller's secured stack must provide."""

# The tests name their consumer groups test-<id>, each test its own: the KafkaUser's group ACL is granted on that
# prefix instead of the configured group's name. Every other ACL is applied as the manifest writes it.
TEST_GROUP_PREFIX = "test-"


def kafka_user() -> dict[str, Any]:
    manifest: dict[str, Any] = yaml.safe_load(KAFKA_USER.read_text())
    return manifest


def acl_bindings(user: dict[str, Any], principal: str) -> list[AclBinding]:
    bindings = []
    for acl in user["spec"]["authorization"]["acls"]:
        resource = acl["resource"]
        kind = {
            "topic": ResourceType.TOPIC,
            "group": ResourceType.GROUP,
            "transactionalId": ResourceType.TRANSACTIONAL_ID,
        }
        name, pattern = resource["name"], resource.get("patternType", "literal")
        if resource["type"] == "group":
            name, pattern = TEST_GROUP_PREFIX, "prefix"
        for operation in acl["operations"]:
            bindings.append(
                AclBinding(
                    kind[resource["type"]],
                    name,
                    {"literal": ResourcePatternType.LITERAL, "prefix": ResourcePatternType.PREFIXED}[pattern],
                    principal,
                    "*",
                    AclOperation[_snake(operation).upper()],
                    AclPermissionType.ALLOW,
                )
            )
    return bindings


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(name))


def admin_settings(stack: dict[str, str]) -> Settings:
    """The stack's admin (a super user) as a Settings, so that the service's own connection code serves it."""
    return Settings(
        kafka_bootstrap_servers=stack["KAFKA_BOOTSTRAP_SERVERS"],
        kafka_sasl_username=stack["KAFKA_ADMIN_USERNAME"],
        kafka_sasl_password=SecretStr(stack["KAFKA_ADMIN_PASSWORD"]),
        kafka_ssl_cafile=stack["KAFKA_SSL_CAFILE"],
        kafka_create_topics=True,
    )


def admin_librdkafka(stack: dict[str, str]) -> dict[str, Any]:
    """The admin's settings for confluent-kafka (librdkafka)."""
    return {
        "bootstrap.servers": stack["KAFKA_BOOTSTRAP_SERVERS"],
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": stack["KAFKA_ADMIN_USERNAME"],
        "sasl.password": stack["KAFKA_ADMIN_PASSWORD"],
        "ssl.ca.location": stack["KAFKA_SSL_CAFILE"],
    }


def environment_stack() -> dict[str, str]:
    """The stack as `local_stack` exported it."""
    return {name: value for name, value in os.environ.items() if name.startswith(("KAFKA_", "SCHEMA_"))}


def admin_aiokafka() -> dict[str, Any]:
    """The admin's options for aiokafka clients (the tests' own probes), from the exported stack."""
    options = connection_options(admin_settings(environment_stack()))
    del options["bootstrap_servers"], options["client_id"]
    return options


def accepted(stack: dict[str, str], name: str, password: str, within_seconds: float = 60) -> None:
    """Wait until the broker accepts `name`'s new password: the controller has committed the credential when
    `alter_user_scram_credentials` returns, but the broker applies it from the metadata log a moment later."""
    login = admin_librdkafka(stack) | {"sasl.username": name, "sasl.password": password}
    deadline = time.monotonic() + within_seconds
    while True:
        try:
            AdminClient(login).list_topics(timeout=5)
            return
        except KafkaException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def set_up_service_principal(stack: dict[str, str]) -> dict[str, str]:
    """As Strimzi would: the service's topics, its user and its ACLs. Returns the settings the service connects
    with: its own credentials, never the admin's."""
    user = kafka_user()
    name = user["metadata"]["name"]
    asyncio.run(ensure_topics(admin_settings(stack)))
    client = AdminClient(admin_librdkafka(stack))
    password = secrets.token_urlsafe(18)
    credential = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192)
    upsertion = UserScramCredentialUpsertion(name, credential, password.encode())
    for done in client.alter_user_scram_credentials([upsertion]).values():
        done.result(timeout=30)
    accepted(stack, name, password)
    for done in client.create_acls(acl_bindings(user, f"User:{name}")).values():
        done.result(timeout=30)
    service = {"KAFKA_SASL_USERNAME": name, "KAFKA_SASL_PASSWORD": password}
    # Strimzi's KafkaTopics own the topics: the service may not create any.
    return stack | service | {"KAFKA_CREATE_TOPICS": "false"}
