"""Avro on the real schema registry: other Confluent-API clients read what the service writes, old and new schema
versions interoperate, and the registry's evolution rules refuse what would break consumers."""

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.schema_registry import (
    AsyncSchemaRegistryClient,
    ConfigCompatibilityLevel,
    Schema,
    ServerConfig,
)
from confluent_kafka.schema_registry.avro import AsyncAvroDeserializer, AsyncAvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from order_pipelines.events.avro import AvroSerde, load_schema
from order_pipelines.events.catalog import TOPICS
from order_pipelines.events.models import Event
from order_pipelines.events.serde import SchemaRefusedError
from order_pipelines.schema_registry import breaks, check_registry, register
from order_pipelines.settings import Settings
from tests.samples import ROUTES, sample_event, unique_key

from .kafka_io import find_record
from .service import running_service, service_settings

pytestmark = pytest.mark.integration

TOPIC = TOPICS[0]
EVENT_TYPE = TOPIC.event_types[0]
SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def unused_field_name(schema: dict[str, Any]) -> str:
    """A name for a field the tests add to `schema`, derived so that no field of the spec can already hold it."""
    taken = {field["name"] for field in schema["fields"]}
    return next(name for name in (f"added_field_{n}" for n in range(len(taken) + 1)) if name not in taken)


# The field the evolution tests add to EVENT_TYPE.
NEW_FIELD = unused_field_name(load_schema(EVENT_TYPE, SCHEMAS))


@pytest.fixture
async def registry(schema_registry_url: str) -> AsyncIterator[AsyncSchemaRegistryClient]:
    async with AsyncSchemaRegistryClient({"url": schema_registry_url}) as client:
        yield client


def v2_schema() -> dict[str, Any]:
    """The next version of the first event's schema: one field added, with a default, as evolution allows."""
    schema = load_schema(EVENT_TYPE, SCHEMAS)
    schema["fields"].append({"name": "added_in_v2", "type": "string", "default": "unset"})
    return schema


def as_record(event: Event) -> dict[str, Any]:
    return {name: value for name, value in vars(event).items() if name != "type"}


async def test_an_independent_client_decodes_what_the_service_published(
    kafka_bootstrap: str, registry: AsyncSchemaRegistryClient, unique: str
) -> None:
    key = unique_key(TOPIC)
    event = sample_event(TOPIC, key=key)
    async with running_service(service_settings(kafka_bootstrap, unique)) as client:
        response = await client.post(ROUTES[TOPIC.name], json=event.model_dump(mode="json"))
        assert response.status_code == 202, response.text
    record = await find_record(kafka_bootstrap, TOPIC.name, key.encode())
    # confluent-kafka's deserializer: the writer schema comes from the registry by the id in the message.
    deserializer = await AsyncAvroDeserializer(registry)
    decoded = await deserializer(record.value, None)
    assert decoded == as_record(event)


async def test_a_v2_producer_and_a_v1_consumer_interoperate(registry: AsyncSchemaRegistryClient, unique: str) -> None:
    """A rolling deploy: the other side already runs v2 of the schema (one added field with a default)."""
    topic = replace(TOPIC, name=f"{TOPIC.name}.{unique}")  # a subject of its own, whatever the strategy
    settings = Settings()
    v1 = AvroSerde(registry, settings.schema_subject_strategy, True, SCHEMAS)
    event = sample_event(topic, EVENT_TYPE)
    context = SerializationContext(topic.name, MessageField.VALUE)

    # v1 writes first (it registers v1); a v2 consumer reads it, filling the new field from its default.
    v2_reader = await AsyncAvroDeserializer(registry, json.dumps(v2_schema()))
    from_v1 = await v2_reader(await v1.serialize(topic, event), None)
    assert from_v1 == as_record(event) | {"added_in_v2": "unset"}

    # v2 writes with confluent-kafka's own serializer; this service, still on v1, reads it by the schema id.
    v2_subject = f"interop-{unique}"
    v2_writer = await AsyncAvroSerializer(
        registry, json.dumps(v2_schema()), conf={"subject.name.strategy": lambda ctx, name: v2_subject}
    )
    data = await v2_writer(as_record(event) | {"added_in_v2": "set by v2"}, context)
    assert data is not None
    assert await v1.deserialize(topic, data) == event


async def test_a_schema_the_registry_does_not_know_is_refused_with_its_subject(
    registry: AsyncSchemaRegistryClient, tmp_path: Path, unique: str
) -> None:
    """Production: auto-registration off, and the service ships a schema nobody registered."""
    schema = load_schema(EVENT_TYPE, SCHEMAS)
    schema["fields"].append({"name": f"unregistered_{unique}", "type": ["null", "string"], "default": None})
    for path in SCHEMAS.glob("*.avsc"):
        (tmp_path / path.name).write_text(path.read_text())
    (tmp_path / f"{schema['namespace']}.{schema['name']}.avsc").write_text(json.dumps(schema))
    serde = AvroSerde(registry, Settings().schema_subject_strategy, False, tmp_path)
    with pytest.raises(SchemaRefusedError) as refused:
        await serde.serialize(TOPIC, sample_event(TOPIC, EVENT_TYPE))
    assert refused.value.subject == serde.subject(TOPIC, EVENT_TYPE)


@pytest.mark.parametrize(
    ("level", "change", "compatible"),
    [
        ("BACKWARD", {"name": NEW_FIELD, "type": "int", "default": 0}, True),
        ("BACKWARD", {"name": NEW_FIELD, "type": "int"}, False),
        ("FORWARD", {"name": NEW_FIELD, "type": "int"}, True),
        ("FULL", {"name": NEW_FIELD, "type": ["null", "int"], "default": None}, True),
        ("FULL", {"name": NEW_FIELD, "type": "int"}, False),
    ],
)
async def test_the_registry_enforces_the_compatibility_level_on_new_fields(
    registry: AsyncSchemaRegistryClient, unique: str, level: str, change: dict[str, Any], compatible: bool
) -> None:
    subject = f"evolution-{unique}"
    v1 = load_schema(EVENT_TYPE, SCHEMAS)
    await registry.set_config(subject, ServerConfig(compatibility=ConfigCompatibilityLevel[level]))
    await registry.register_schema(subject, Schema(json.dumps(v1), "AVRO"))
    v2 = v1 | {"fields": [*v1["fields"], change]}
    assert await registry.test_compatibility(subject, Schema(json.dumps(v2), "AVRO")) is compatible
    explained = breaks(v2, v1, level, "version 1")
    assert (explained == []) is compatible
    if not compatible:
        assert f"`{NEW_FIELD}` was added without a default" in explained[0]


@pytest.mark.parametrize("level", ["BACKWARD", "FORWARD", "FULL", "BACKWARD_TRANSITIVE"])
async def test_the_registry_refuses_a_changed_field_type_under_every_level(
    registry: AsyncSchemaRegistryClient, unique: str, level: str
) -> None:
    subject = f"retype-{unique}"
    v1 = load_schema(EVENT_TYPE, SCHEMAS)
    await registry.set_config(subject, ServerConfig(compatibility=ConfigCompatibilityLevel[level]))
    await registry.register_schema(subject, Schema(json.dumps(v1), "AVRO"))
    key = TOPIC.key_field
    fields = [field | {"type": "boolean"} if field["name"] == key else field for field in v1["fields"]]
    assert not await registry.test_compatibility(subject, Schema(json.dumps(v1 | {"fields": fields}), "AVRO"))


async def test_schema_check_names_the_subject_the_field_and_the_rule(
    registry: AsyncSchemaRegistryClient, tmp_path: Path
) -> None:
    """`make schema-register` then `make schema-check` with a broken local change, as CI would run them."""
    settings = Settings()
    assert await register(settings, registry) == []
    assert await check_registry(settings, registry) == []
    for path in SCHEMAS.glob("*.avsc"):
        (tmp_path / path.name).write_text(path.read_text())
    schema = load_schema(EVENT_TYPE, tmp_path)
    schema["fields"] = [
        field | {"type": "boolean"} if field["name"] == TOPIC.key_field else field for field in schema["fields"]
    ]
    (tmp_path / f"{schema['namespace']}.{schema['name']}.avsc").write_text(json.dumps(schema))
    problems = await check_registry(settings, registry, tmp_path)
    subject = AvroSerde(registry, settings.schema_subject_strategy, False, SCHEMAS).subject(TOPIC, EVENT_TYPE)
    if settings.schema_compatibility != "NONE":
        assert problems
        assert all(
            problem.startswith(f"{subject}: {settings.schema_compatibility} broken: field `{TOPIC.key_field}`")
            for problem in problems
        )
