"""The `outbox` pattern: the POST routes of its topics write their event into the database with the domain row, in
one transaction; Debezium's outbox event router publishes it from the write-ahead log."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field as PydanticField

from ..base import Rendered, Strict, problem, section_of
from .database import HEARTBEAT_PREFIX, RESERVED_TABLES, _capture, _table_of

if TYPE_CHECKING:
    from ..spec import Spec

NAME = "outbox"
EXAMPLE: str | None = None
PROCESS = False


class SpecOutbox(Strict):
    """The `outbox` pattern: the POST routes of these topics write their event into the database with the domain
    row, in one transaction; Debezium's outbox event router publishes it from the write-ahead log."""

    topics: Annotated[list[str], PydanticField(min_length=1)] | None = None


ADVICE: dict[str, str] = {
    "outbox": "write a mapping, e.g. `outbox: {topics: [agent.tasks]}`, or `outbox: {}` for every topic.",
    "outbox.topics": "list the topics whose POST routes write to the outbox, e.g. `topics: [agent.tasks]`; "
    "or leave it out for every topic.",
}

KEYS: dict[str, tuple[str, ...]] = {"outbox": tuple(SpecOutbox.model_fields)}


def section(spec: Spec) -> SpecOutbox | None:
    return section_of(spec, NAME, SpecOutbox)


def check(spec: Spec, taken: set[str]) -> set[str]:
    outbox = section(spec)
    if outbox is None:
        return set()
    names = [topic.name for topic in spec.topics]
    if outbox.topics is not None:
        for index, name in enumerate(outbox.topics):
            if name not in names:
                raise problem(
                    f'"{name}" is not a topic of the spec; name a topic whose POST route writes to the outbox, '
                    f"e.g. {names[0]}.",
                    loc=f"outbox.topics[{index}]",
                )
            if name in outbox.topics[:index]:
                raise problem(f'"{name}" appears twice; keep one.', loc=f"outbox.topics[{index}]")
    for name in outbox.topics or names:
        if _table_of(name) in RESERVED_TABLES:
            raise problem(
                f'the domain table of {name} would be "{_table_of(name)}", a table of the service itself; '
                "rename the topic or leave it out of the outbox.",
                loc="outbox.topics",
            )
    return set()  # it publishes to the spec's topics


def domain_tables(spec: Spec) -> set[str]:
    """The tables the outbox's topics write their domain rows to; none without the pattern."""
    outbox = section(spec)
    if outbox is None:
        return set()
    return {_table_of(name) for name in (outbox.topics or [topic.name for topic in spec.topics])}


def answer_problems(spec: dict[str, Any], parsed: Spec) -> list[str]:
    return []


def _outbox_connector(package_name: str) -> dict[str, str]:
    return {
        **_capture(f"{package_name}_outbox", "outbox"),
        # The outbox is a stream, not a table: rows written before the connector existed are not replayed.
        "snapshot.mode": "no_data",
        "transforms": "outbox,dropRouterId",
        "transforms.outbox.type": "io.debezium.transforms.outbox.EventRouter",
        # aggregatetype holds the destination topic's name as it is; aggregateid is the record key.
        "transforms.outbox.route.topic.replacement": "${routedByValue}",
        # The headers a direct publish sets, in its order (kafka/producer.py's event_headers), from the row's columns.
        "transforms.outbox.table.fields.additional.placement": (
            "type:header:event-type,id:header:event-id,"
            "correlation_id:header:correlation-id,causation_id:header:causation-id"
        ),
        # The router's own `id` header repeats event-id: dropped, so that the record has a direct publish's headers.
        "transforms.dropRouterId.type": "org.apache.kafka.connect.transforms.DropHeaders",
        "transforms.dropRouterId.headers": "id",
        "key.converter": "org.apache.kafka.connect.storage.StringConverter",
        # The payload column holds the Confluent-framed Avro the service's serializer made: written as it is.
        "value.converter": "io.debezium.converters.BinaryDataConverter",
        # A heartbeat record is a struct, not payload bytes: written as JSON.
        "value.converter.delegate.converter.type": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter.delegate.converter.type.schemas.enable": "false",
    }


class OutboxTableModel(Rendered):
    topic: str
    ident: str
    table: str
    key: str


class OutboxModel(Rendered):
    topics: list[str]
    tables: list[OutboxTableModel]
    connector: str
    config: dict[str, str]
    heartbeat_topic: str


def derive(spec: Spec, package_name: str) -> dict[str, Any] | None:
    outbox = section(spec)
    chosen = (outbox.topics if outbox is not None else None) or [topic.name for topic in spec.topics]
    by_name = {topic.name: topic for topic in spec.topics}
    return {
        "topics": chosen,
        "tables": [
            {"topic": name, "ident": _table_of(name), "table": _table_of(name), "key": by_name[name].key}
            for name in chosen
        ],
        "connector": f"{package_name.replace('_', '-')}-outbox",
        "config": _outbox_connector(package_name),
        "heartbeat_topic": f"{HEARTBEAT_PREFIX}.{_outbox_connector(package_name)['topic.prefix']}",
    }


def stored_topics(section: dict[str, Any]) -> list[str]:
    """The topics whose events are stored before they are published: their 202 carries no partition or offset."""
    topics: list[str] = section["topics"]
    return topics


def consumed_topics(section: dict[str, Any]) -> list[dict[str, Any]]:
    return []


SECTION = SpecOutbox
MODEL = OutboxModel
