"""Avro without a registry process: the models agree with schemas/, the serde round-trips through confluent-kafka's
in-memory registry, and the offline evolution check catches breaking changes."""

import json
import types
from datetime import datetime
from io import BytesIO
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin
from uuid import UUID

import pytest
from confluent_kafka.schema_registry import AsyncSchemaRegistryClient, Schema
from confluent_kafka.schema_registry._async.mock_schema_registry_client import AsyncMockSchemaRegistryClient
from fastapi.testclient import TestClient
from fastavro import parse_schema, schemaless_reader, schemaless_writer

from agent_tasks.api.dependencies import get_publisher
from agent_tasks.events.avro import NAMESPACE, AvroSerde, SubjectStrategy, full_name, load_schema, subject_name
from agent_tasks.events.catalog import TOPICS, Topic
from agent_tasks.events.models import Event
from agent_tasks.events.serde import DeserializationError, RegistryUnavailableError, SchemaRefusedError
from agent_tasks.kafka.producer import Published
from agent_tasks.main import create_app
from agent_tasks.schema_registry import check_released, release
from agent_tasks.settings import Settings
from tests.samples import ROUTES, sample_event

ALL_EVENTS = [(topic, event_type) for topic in TOPICS for event_type in topic.event_types]
IDS = [event_type.__name__ for _, event_type in ALL_EVENTS]
PRIMITIVES: dict[str, type] = {"string": str, "int": int, "long": int, "float": float, "double": float, "boolean": bool}
LOGICAL: dict[str, type] = {"uuid": UUID, "timestamp-millis": datetime}
SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def unused_field_name(schema: dict[str, Any]) -> str:
    """A name for a field the tests add to `schema`, derived so that no field of the spec can already hold it."""
    taken = {field["name"] for field in schema["fields"]}
    return next(name for name in (f"added_field_{n}" for n in range(len(taken) + 1)) if name not in taken)


# The field the evolution tests add to the first event type.
NEW_FIELD = unused_field_name(load_schema(TOPICS[0].event_types[0], SCHEMAS))


def avro_to_python(avro_type: Any) -> tuple[type, bool]:
    """The Python type an Avro field type maps to, and whether it is optional (a union with null)."""
    optional = isinstance(avro_type, list)
    if optional:
        assert avro_type[0] == "null", "optional fields are [null, T], so that null can be the default"
        assert len(avro_type) == 2
        avro_type = avro_type[1]
    if isinstance(avro_type, dict):
        return LOGICAL[avro_type["logicalType"]], optional
    return PRIMITIVES[avro_type], optional


def model_type(annotation: Any) -> tuple[Any, bool]:
    optional = False
    if get_origin(annotation) in (Union, types.UnionType):
        optional = type(None) in get_args(annotation)
        annotation = next(arg for arg in get_args(annotation) if arg is not type(None))
    if get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation, optional


@pytest.mark.parametrize(("topic", "event_type"), ALL_EVENTS, ids=IDS)
def test_each_model_matches_its_schema(topic: Topic, event_type: type[Event]) -> None:
    schema = load_schema(event_type, SCHEMAS)
    assert (schema["namespace"], schema["name"]) == (NAMESPACE, event_type.__name__)
    fields = {name: info for name, info in event_type.model_fields.items() if name != "type"}
    assert [field["name"] for field in schema["fields"]] == list(fields), "same fields, same order"
    for field in schema["fields"]:
        info = fields[field["name"]]
        expected, optional = avro_to_python(field["type"])
        assert model_type(info.annotation) == (expected, optional), field["name"]
        if optional:
            assert field["default"] is None, field["name"]
            assert info.default is None, field["name"]
        assert field.get("doc", "") == (info.description or ""), field["name"]


def test_every_schema_file_belongs_to_an_event() -> None:
    expected = {f"{full_name(event_type)}.avsc" for _, event_type in ALL_EVENTS}
    assert {path.name for path in SCHEMAS.glob("*.avsc")} == expected


def serde(registry: AsyncSchemaRegistryClient | None = None, auto_register: bool = True) -> AvroSerde:
    registry = registry or AsyncMockSchemaRegistryClient({"url": "mock://"})
    return AvroSerde(registry, Settings().schema_subject_strategy, auto_register, SCHEMAS)


@pytest.mark.parametrize(("topic", "event_type"), ALL_EVENTS, ids=IDS)
async def test_every_event_survives_the_avro_serde(topic: Topic, event_type: type[Event]) -> None:
    avro = serde()
    event = sample_event(topic, event_type)
    decoded = await avro.deserialize(topic, await avro.serialize(topic, event))
    assert decoded == event
    assert type(decoded) is event_type


async def test_records_are_in_the_confluent_wire_format() -> None:
    registry = AsyncMockSchemaRegistryClient({"url": "mock://"})
    avro = serde(registry)
    topic = TOPICS[0]
    event = sample_event(topic)
    data = await avro.serialize(topic, event)
    registered = await registry.get_latest_version(avro.subject(topic, type(event)))
    assert data[0] == 0
    assert int.from_bytes(data[1:5], "big") == registered.schema_id
    body = schemaless_reader(BytesIO(data[5:]), parse_schema(load_schema(type(event), SCHEMAS)), None)
    assert isinstance(body, dict)
    assert body["event_id"] == event.event_id


async def test_schema_ids_are_cached_so_the_hot_path_does_no_http(monkeypatch: pytest.MonkeyPatch) -> None:
    registry = AsyncMockSchemaRegistryClient({"url": "mock://"})
    avro = serde(registry)
    topic = TOPICS[0]
    data = await avro.serialize(topic, sample_event(topic))
    await avro.deserialize(topic, data)

    async def no_http(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the registry was asked again")

    for method in ("register_schema", "lookup_schema", "get_schema"):
        monkeypatch.setattr(registry, method, no_http)
    for _ in range(3):
        await avro.deserialize(topic, await avro.serialize(topic, sample_event(topic)))


async def test_a_newer_writer_schema_is_read_into_the_local_model() -> None:
    """A producer one deploy ahead added a field: this consumer decodes with its own schema and ignores it."""
    registry = AsyncMockSchemaRegistryClient({"url": "mock://"})
    avro = serde(registry)
    topic = TOPICS[0]
    event = sample_event(topic)
    newer = load_schema(type(event), SCHEMAS)
    added = unused_field_name(newer)
    newer["fields"].append({"name": added, "type": "string", "default": ""})
    subject = avro.subject(topic, type(event))
    schema_id = await registry.register_schema(subject, Schema(json.dumps(newer), "AVRO"))
    out = BytesIO()
    out.write(b"\x00" + schema_id.to_bytes(4, "big"))
    schemaless_writer(out, parse_schema(newer), event.__dict__ | {added: "surprise"})
    assert await avro.deserialize(topic, out.getvalue()) == event


@pytest.mark.parametrize("data", [b"", b"{}", b"\x00\x00", b"\x01\x00\x00\x00\x01abc"])
async def test_bytes_without_the_wire_format_are_poison(data: bytes) -> None:
    with pytest.raises(DeserializationError):
        await serde().deserialize(TOPICS[0], data)


async def test_an_unknown_schema_id_or_garbled_body_is_poison() -> None:
    avro = serde()
    topic = TOPICS[0]
    with pytest.raises(DeserializationError, match="unknown"):
        await avro.deserialize(topic, b"\x00\x00\x0f\x42\x40payload")
    data = await avro.serialize(topic, sample_event(topic))
    with pytest.raises(DeserializationError):
        await avro.deserialize(topic, data[:6])


async def test_an_unregistered_schema_is_refused_when_auto_register_is_off() -> None:
    avro = serde(auto_register=False)
    topic = TOPICS[0]
    event = sample_event(topic)
    with pytest.raises(SchemaRefusedError) as refused:
        await avro.serialize(topic, event)
    assert refused.value.subject == avro.subject(topic, type(event))
    assert refused.value.subject in str(refused.value)


async def test_an_unreachable_registry_is_not_mistaken_for_poison() -> None:
    # Nothing listens on port 9: one retry after 10 ms, not the client's default three with seconds of backoff.
    unreachable = AsyncSchemaRegistryClient({"url": "http://127.0.0.1:9", "max.retries": 1, "retries.wait.ms": 10})
    avro = AvroSerde(unreachable, "topic-record", True, SCHEMAS)
    topic = TOPICS[0]
    with pytest.raises(RegistryUnavailableError):
        await avro.serialize(topic, sample_event(topic))
    with pytest.raises(RegistryUnavailableError):
        await avro.deserialize(topic, b"\x00\x00\x00\x00\x07body")


@pytest.mark.parametrize(
    ("strategy", "subject"),
    [("topic", "orders-value"), ("record", "shop.OrderPlaced"), ("topic-record", "orders-shop.OrderPlaced")],
)
def test_subject_name_strategies(strategy: SubjectStrategy, subject: str) -> None:
    assert subject_name(strategy, "orders", "shop.OrderPlaced") == subject


class RefusingPublisher:
    def __init__(self, error: Exception) -> None:
        self.error = error

    async def publish(self, event: Event) -> Published:
        raise self.error


@pytest.mark.parametrize(
    ("error", "status"),
    [(SchemaRefusedError("orders-shop.OrderPlaced", "incompatible"), 500), (RegistryUnavailableError("down"), 503)],
)
def test_the_api_names_the_subject_when_the_registry_refuses(error: Exception, status: int) -> None:
    app = create_app(Settings())
    app.dependency_overrides[get_publisher] = lambda: RefusingPublisher(error)
    topic = TOPICS[0]
    response = TestClient(app).post(ROUTES[topic.name], json=sample_event(topic).model_dump(mode="json"))
    assert response.status_code == status
    assert str(error) in response.json()["detail"]
    if status == 503:
        assert "Retry-After" in response.headers


def evolve(directory: Path, change: dict[str, Any]) -> Path:
    """Release the current schemas into directory/released, then apply `change` to the first event's schema."""
    for path in SCHEMAS.glob("*.avsc"):
        (directory / path.name).write_text(path.read_text())
    release(directory, directory / "released")
    event_type = TOPICS[0].event_types[0]
    schema = load_schema(event_type, directory)
    if "add" in change:
        schema["fields"].append(change["add"])
    if "retype" in change:
        field = next(field for field in schema["fields"] if field["name"] == change["retype"])
        field["type"] = "boolean" if field["type"] != "boolean" else "string"
    (directory / f"{full_name(event_type)}.avsc").write_text(json.dumps(schema))
    return directory


def test_the_released_snapshot_accepts_a_new_field_with_a_default(tmp_path: Path) -> None:
    directory = evolve(tmp_path, {"add": {"name": NEW_FIELD, "type": ["null", "int"], "default": None}})
    for level in ("BACKWARD", "FORWARD", "FULL_TRANSITIVE"):
        settings = Settings(schema_compatibility=level)
        assert check_released(settings, directory, directory / "released") == []


def test_the_released_snapshot_refuses_a_new_field_without_a_default_under_backward(tmp_path: Path) -> None:
    directory = evolve(tmp_path, {"add": {"name": NEW_FIELD, "type": "int"}})
    problems = check_released(Settings(schema_compatibility="BACKWARD"), directory, directory / "released")
    assert len(problems) == 1
    first = TOPICS[0].event_types[0]
    assert problems[0].startswith(subject_name(Settings().schema_subject_strategy, TOPICS[0].name, full_name(first)))
    assert f"BACKWARD broken: field `{NEW_FIELD}` was added without a default" in problems[0]
    assert check_released(Settings(schema_compatibility="FORWARD"), directory, directory / "released") == []


@pytest.mark.parametrize("level", ["BACKWARD", "FORWARD", "FULL", "FULL_TRANSITIVE"])
def test_the_released_snapshot_refuses_a_changed_field_type(tmp_path: Path, level: str) -> None:
    key_field = TOPICS[0].key_field
    directory = evolve(tmp_path, {"retype": key_field})
    problems = check_released(Settings(schema_compatibility=level), directory, directory / "released")
    assert problems
    assert all(f"`{key_field}`" in problem and level in problem for problem in problems)


def test_the_project_schemas_are_compatible_with_their_last_release() -> None:
    """What CI runs: schemas/released/ holds the schemas of the last release (`make schema-release`)."""
    assert check_released(Settings(), SCHEMAS, SCHEMAS / "released") == []
