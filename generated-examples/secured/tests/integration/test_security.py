"""The service on a broker that enforces ACLs: what its KafkaUser grants is enough, nothing more is granted, and
its credentials are the way in."""

import asyncio
import logging

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAuthorizationFailedError
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka import KafkaError as LibrdkafkaError
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # re-exported, but no __all__ says so
    AdminClient,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from secure_ledger.app import create_app
from secure_ledger.events.catalog import TOPICS
from secure_ledger.kafka.connection import KafkaCredentialsError, connection_options
from tests.security import admin_aiokafka, admin_librdkafka, environment_stack

from .service import eventually, service_settings

pytestmark = pytest.mark.integration

TOPIC = TOPICS[0]


async def create_topic(bootstrap: str, name: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **admin_aiokafka())
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 1, 1)])
    finally:
        await admin.close()


async def test_the_service_is_denied_a_topic_outside_its_acls(kafka_bootstrap: str, unique: str) -> None:
    outside = f"outside-{unique}"
    await create_topic(kafka_bootstrap, outside)
    producer = AIOKafkaProducer(**connection_options(service_settings(kafka_bootstrap, unique)), acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(TOPIC.name, b"granted", key=b"granted")  # its own topic: allowed
        with pytest.raises(TopicAuthorizationFailedError):
            await producer.send_and_wait(outside, b"not granted", key=b"k")
    finally:
        await producer.stop()


async def test_a_group_outside_its_acls_makes_it_unready_with_the_cause_logged_not_a_crash_loop(
    kafka_bootstrap: str, unique: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = service_settings(kafka_bootstrap, unique, kafka_consumer_group=f"outside-{unique}")
    app = create_app(settings)
    caplog.set_level(logging.ERROR)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:

            async def denied_logged() -> bool:
                return any("GroupAuthorizationFailed" in r.getMessage() + str(r.exc_info) for r in caplog.records)

            await eventually(denied_logged)
            ready = await client.get("/health/ready")
            assert ready.status_code == 503
            assert ready.json()["consumer"] is False
            # A restart cannot grant an ACL: the pod stays alive (no crash loop), unready until the ACL exists.
            assert (await client.get("/health/live")).status_code == 200


async def test_the_service_is_denied_a_transactional_id_outside_its_acls(kafka_bootstrap: str, unique: str) -> None:
    producer = AIOKafkaProducer(
        **connection_options(service_settings(kafka_bootstrap, unique)), transactional_id=f"outside-{unique}"
    )
    with pytest.raises(KafkaError, match="TransactionalIdAuthorizationFailed"):
        await producer.start()
    await producer.stop()


async def test_a_wrong_password_fails_start_up_saying_so(kafka_bootstrap: str, unique: str) -> None:
    settings = service_settings(kafka_bootstrap, unique, kafka_sasl_password="not-the-password")
    app = create_app(settings)
    with pytest.raises(KafkaCredentialsError, match=f"Kafka refused user '{settings.kafka_sasl_username}'"):
        async with app.router.lifespan_context(app):
            pass


def another_user(stack: dict[str, str], unique: str) -> dict[str, str]:
    """A second SCRAM user, with no ACL at all: librdkafka settings to connect as it."""
    name, password = f"intruder-{unique}", f"password-{unique}"
    credential = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192)
    admin = AdminClient(admin_librdkafka(stack))
    for done in admin.alter_user_scram_credentials(
        [UserScramCredentialUpsertion(name, credential, password.encode())]
    ).values():
        done.result(timeout=30)
    return admin_librdkafka(stack) | {"sasl.username": name, "sasl.password": password}


async def test_another_user_without_acls_cannot_consume_the_services_topic(kafka_bootstrap: str, unique: str) -> None:
    settings = another_user(environment_stack(), unique)
    consumer = Consumer(settings | {"group.id": f"test-{unique}", "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(TOPIC.name, p, 0) for p in range(TOPIC.partitions)])
        error = None
        for _ in range(20):
            message = await asyncio.to_thread(consumer.poll, 1.0)
            if message is None:
                continue
            error = message.error()
            assert error is not None, "a user without ACLs read the service's topic"
            break
        # Refused on the group it reads for, or on the topic itself: either way, nothing read.
        assert error is not None
        assert error.code() in (LibrdkafkaError.GROUP_AUTHORIZATION_FAILED, LibrdkafkaError.TOPIC_AUTHORIZATION_FAILED)
    finally:
        await asyncio.to_thread(consumer.close)


async def test_a_client_without_credentials_cannot_read_the_services_topic(kafka_bootstrap: str) -> None:
    # TLS to the broker, but no SASL login: the broker drops the connection.
    options = admin_aiokafka()
    anonymous = {"security_protocol": "SSL", "ssl_context": options["ssl_context"]}
    consumer = AIOKafkaConsumer(TOPIC.name, bootstrap_servers=kafka_bootstrap, request_timeout_ms=5000, **anonymous)
    with pytest.raises(KafkaConnectionError):
        await consumer.start()
    await consumer.stop()
