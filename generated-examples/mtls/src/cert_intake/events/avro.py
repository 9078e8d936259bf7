"""Events as Avro records in a schema registry, framed in the Confluent wire format (magic byte 0, the schema id
as 4 big-endian bytes, then the Avro body), so that any Confluent-API client reads what this service writes.

The local schemas in schemas/ are the reader's schemas: a consumer decodes each message with the schema its
producer registered (found by the id in the message) resolved into the local one, so old and new producers can run
side by side during a rolling deploy.
"""

import json
import struct
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any, Literal

from confluent_kafka.schema_registry import AsyncSchemaRegistryClient, Schema, SchemaRegistryError
from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.types import Schema as ParsedSchema

from .catalog import TOPICS, Topic
from .models import Event
from .serde import DeserializationError, RegistryUnavailableError, SchemaRefusedError

NAMESPACE = __name__.rpartition(".")[0]
"""The Avro namespace of every event record: this package's `events`."""

SubjectStrategy = Literal["topic", "record", "topic-record"]

_MAGIC = 0
_HEADER = struct.Struct(">bI")
_NOT_FOUND = 404


def schema_dir() -> Path:
    """schemas/ at the project root; in a wheel, the copy pyproject.toml puts inside the package."""
    packaged = Path(__file__).resolve().parents[1] / "schemas"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[3] / "schemas"


def full_name(event_type: type[Event]) -> str:
    return f"{NAMESPACE}.{event_type.__name__}"


def load_schema(event_type: type[Event], directory: Path | None = None) -> dict[str, Any]:
    """The local .avsc of `event_type`, as JSON."""
    path = (directory or schema_dir()) / f"{full_name(event_type)}.avsc"
    schema: dict[str, Any] = json.loads(path.read_text())
    return schema


def subject_name(strategy: SubjectStrategy, topic: str, record: str) -> str:
    """The registry subject a record's schema evolves under, as Confluent's subject name strategies name it."""
    if strategy == "topic":
        return f"{topic}-value"  # TopicNameStrategy
    if strategy == "record":
        return record  # RecordNameStrategy
    return f"{topic}-{record}"  # TopicRecordNameStrategy


@dataclass(frozen=True)
class _Writer:
    header: bytes
    schema: ParsedSchema


@dataclass(frozen=True)
class _Reader:
    event_type: type[Event]
    writer_schema: ParsedSchema
    reader_schema: ParsedSchema | None
    """None when the writer's schema is the local one: nothing to resolve (fastavro would compare them per read)."""


class AvroSerde:
    """The `EventSerde` of the service. Schema ids are cached per topic and type, writer schemas per id: after the
    first event of each kind the hot path does no HTTP."""

    def __init__(
        self,
        registry: AsyncSchemaRegistryClient,
        strategy: SubjectStrategy,
        auto_register: bool,
        directory: Path | None = None,
    ) -> None:
        self._registry = registry
        self._strategy = strategy
        self._auto_register = auto_register
        self._local = {
            full_name(event_type): load_schema(event_type, directory)
            for topic in TOPICS
            for event_type in topic.event_types
        }
        self._types = {full_name(event_type): event_type for topic in TOPICS for event_type in topic.event_types}
        self._parsed = {name: parse_schema(schema) for name, schema in self._local.items()}
        self._writers: dict[tuple[str, type[Event]], _Writer] = {}
        self._readers: dict[int, _Reader] = {}

    def subject(self, topic: Topic, event_type: type[Event]) -> str:
        return subject_name(self._strategy, topic.name, full_name(event_type))

    async def serialize(self, topic: Topic, event: Event) -> bytes:
        writer = self._writers.get((topic.name, type(event)))
        if writer is None:
            writer = await self._writer(topic, type(event))
        out = BytesIO()
        out.write(writer.header)
        # The model's own attributes: fastavro turns UUIDs and datetimes into their logical types and skips `type`.
        schemaless_writer(out, writer.schema, event.__dict__)
        return out.getvalue()

    async def _writer(self, topic: Topic, event_type: type[Event]) -> _Writer:
        name = full_name(event_type)
        subject = self.subject(topic, event_type)
        schema = Schema(json.dumps(self._local[name]), "AVRO")
        try:
            schema_id: int | None = (
                await self._registry.register_schema(subject, schema)
                if self._auto_register
                else (await self._registry.lookup_schema(subject, schema)).schema_id
            )
        except SchemaRegistryError as error:
            if error.http_status_code >= 500 or error.http_status_code < 0:
                raise RegistryUnavailableError(f"schema registry failed for subject {subject}: {error}") from error
            action = "registering" if self._auto_register else "looking up (auto-register is off)"
            raise SchemaRefusedError(subject, f"the registry refused {action} the local schema: {error}") from error
        except Exception as error:  # the transport: connection refused, timeouts
            raise RegistryUnavailableError(f"schema registry unreachable for subject {subject}: {error!r}") from error
        if schema_id is None:
            raise SchemaRefusedError(subject, "the registry returned no schema id")
        writer = _Writer(_HEADER.pack(_MAGIC, schema_id), self._parsed[name])
        self._writers[(topic.name, event_type)] = writer
        return writer

    async def deserialize(self, topic: Topic, data: bytes) -> Event:
        if len(data) < _HEADER.size or data[0] != _MAGIC:
            raise DeserializationError(f"not a {topic.name} event: no Confluent wire-format header")
        schema_id = _HEADER.unpack_from(data)[1]
        reader = self._readers.get(schema_id)
        if reader is None:
            reader = await self._reader(topic, schema_id)
        if reader.event_type not in topic.event_types:
            raise DeserializationError(f"{reader.event_type.__name__} is not an event of {topic.name}")
        try:
            record = schemaless_reader(BytesIO(data[_HEADER.size :]), reader.writer_schema, reader.reader_schema)
            return reader.event_type.model_validate(record)
        except Exception as error:  # truncated or garbled bytes surface as many exception types
            raise DeserializationError(f"not a {topic.name} event (schema id {schema_id}): {error!r}") from error

    async def _reader(self, topic: Topic, schema_id: int) -> _Reader:
        try:
            registered = await self._registry.get_schema(schema_id)
        except SchemaRegistryError as error:
            if error.http_status_code == _NOT_FOUND:
                raise DeserializationError(f"schema id {schema_id} is unknown to the registry") from error
            raise RegistryUnavailableError(f"schema registry failed for schema id {schema_id}: {error}") from error
        except Exception as error:
            raise RegistryUnavailableError(f"schema registry unreachable for id {schema_id}: {error!r}") from error
        if registered.schema_str is None:
            raise DeserializationError(f"schema id {schema_id} has no schema text")
        try:
            writer_schema = parse_schema(json.loads(registered.schema_str))
        except Exception as error:
            raise DeserializationError(f"schema id {schema_id} is not an Avro schema: {error!r}") from error
        name = writer_schema.get("name") if isinstance(writer_schema, dict) else None
        event_type = self._types.get(str(name))
        if event_type is None:
            raise DeserializationError(f"schema id {schema_id} is record {name}, not an event of {topic.name}")
        local = self._parsed[str(name)]
        reader = _Reader(event_type, writer_schema, None if writer_schema == local else local)
        self._readers[schema_id] = reader
        return reader
