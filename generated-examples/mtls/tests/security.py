"""The secured stack as a cluster would be: the service's topics and its user with the ACLs of its KafkaUser
(deploy/strimzi/base/kafka-user.yaml, the manifest Strimzi applies), set up by the stack's admin."""

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # re-exported, but no __all__ says so
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)

from cert_intake.kafka.admin import ensure_topics
from cert_intake.kafka.connection import connection_options
from cert_intake.settings import Settings

PROJECT = Path(__file__).resolve().parents[1]
KAFKA_USER = PROJECT / "deploy" / "strimzi" / "base" / "kafka-user.yaml"
STACK_SETTINGS = (
    "KAFKA_BOOTSTRAP_SERVERS",
    "SCHEMA_REGISTRY_URL",
    "KAFKA_SSL_CAFILE",
    "KAFKA_ADMIN_USERNAME",
    "KAFKA_ADMIN_PASSWORD",
    "KAFKA_MTLS_BOOTSTRAP_SERVERS",
    "KAFKA_STACK_DIR",
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
        kafka_bootstrap_servers=stack["KAFKA_MTLS_BOOTSTRAP_SERVERS"],
        kafka_ssl_certfile=stack["KAFKA_ADMIN_SSL_CERTFILE"],
        kafka_ssl_keyfile=stack["KAFKA_ADMIN_SSL_KEYFILE"],
        kafka_ssl_cafile=stack["KAFKA_SSL_CAFILE"],
        kafka_create_topics=True,
    )


def admin_librdkafka(stack: dict[str, str]) -> dict[str, Any]:
    """The admin's settings for confluent-kafka (librdkafka)."""
    return {
        "bootstrap.servers": stack["KAFKA_MTLS_BOOTSTRAP_SERVERS"],
        "security.protocol": "SSL",
        "ssl.ca.location": stack["KAFKA_SSL_CAFILE"],
        "ssl.certificate.location": stack["KAFKA_ADMIN_SSL_CERTFILE"],
        "ssl.key.location": stack["KAFKA_ADMIN_SSL_KEYFILE"],
    }


def environment_stack() -> dict[str, str]:
    """The stack as `local_stack` exported it."""
    return {name: value for name, value in os.environ.items() if name.startswith(("KAFKA_", "SCHEMA_"))}


def admin_aiokafka() -> dict[str, Any]:
    """The admin's options for aiokafka clients (the tests' own probes), from the exported stack."""
    options = connection_options(admin_settings(environment_stack()))
    del options["bootstrap_servers"], options["client_id"]
    return options


def certificate(stack: dict[str, str], user: str) -> dict[str, str]:
    """A client certificate with CN=`user`, issued by the stack's CA (`kafka_stack.py cert`)."""
    launcher = PROJECT / "scripts" / "kafka_stack.py"
    issued = subprocess.run(
        [sys.executable, str(launcher), "--state-dir", stack["KAFKA_STACK_DIR"], "cert", user],
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )
    return dict(line.split("=", 1) for line in issued.stdout.split())


def set_up_service_principal(stack: dict[str, str]) -> dict[str, str]:
    """As Strimzi would: the service's topics, its user and its ACLs. Returns the settings the service connects
    with: its own credentials, never the admin's."""
    user = kafka_user()
    name = user["metadata"]["name"]
    admin = certificate(stack, stack["KAFKA_ADMIN_USERNAME"])
    stack = stack | {
        "KAFKA_ADMIN_SSL_CERTFILE": admin["KAFKA_SSL_CERTFILE"],
        "KAFKA_ADMIN_SSL_KEYFILE": admin["KAFKA_SSL_KEYFILE"],
    }
    asyncio.run(ensure_topics(admin_settings(stack)))
    client = AdminClient(admin_librdkafka(stack))
    for done in client.create_acls(acl_bindings(user, f"User:{name}")).values():
        done.result(timeout=30)
    issued = certificate(stack, name)
    service = {
        "KAFKA_BOOTSTRAP_SERVERS": stack["KAFKA_MTLS_BOOTSTRAP_SERVERS"],
        "KAFKA_SSL_CERTFILE": issued["KAFKA_SSL_CERTFILE"],
        "KAFKA_SSL_KEYFILE": issued["KAFKA_SSL_KEYFILE"],
    }
    # Strimzi's KafkaTopics own the topics: the service may not create any.
    return stack | service | {"KAFKA_CREATE_TOPICS": "false"}
