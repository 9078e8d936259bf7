"""The service on a broker that enforces ACLs: what its KafkaUser grants is enough, nothing more is granted, and
its credentials are the way in."""

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, TopicAuthorizationFailedError
from aiokafka.helpers import create_ssl_context
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka import KafkaError as LibrdkafkaError

from cert_intake.app import create_app
from cert_intake.events.catalog import TOPICS
from cert_intake.kafka.connection import KafkaCredentialsError, connection_options
from tests.security import admin_aiokafka, admin_librdkafka, certificate, environment_stack

from .service import service_settings

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


async def test_start_up_without_a_client_certificate_says_what_is_missing(kafka_bootstrap: str, unique: str) -> None:
    app = create_app(service_settings(kafka_bootstrap, unique, kafka_ssl_certfile=None))
    with pytest.raises(KafkaCredentialsError, match="KAFKA_SSL_CERTFILE"):
        async with app.router.lifespan_context(app):
            pass


def another_user(stack: dict[str, str], unique: str) -> dict[str, str]:
    """A second user, with a certificate from the same CA but no ACL at all: librdkafka settings to connect as it."""
    issued = certificate(stack, f"intruder-{unique}")
    return admin_librdkafka(stack) | {
        "ssl.certificate.location": issued["KAFKA_SSL_CERTFILE"],
        "ssl.key.location": issued["KAFKA_SSL_KEYFILE"],
    }


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
    # TLS to the broker, but no client certificate: the handshake fails.
    stack = environment_stack()
    anonymous = {"security_protocol": "SSL", "ssl_context": create_ssl_context(cafile=stack["KAFKA_SSL_CAFILE"])}
    consumer = AIOKafkaConsumer(TOPIC.name, bootstrap_servers=kafka_bootstrap, request_timeout_ms=5000, **anonymous)
    with pytest.raises(KafkaConnectionError):
        await consumer.start()
    await consumer.stop()
