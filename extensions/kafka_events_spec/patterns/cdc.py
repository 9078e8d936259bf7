"""The `cdc` pattern: a table of the service's database, captured by Debezium; the service consumes its changes as
typed change events, through the runner of the spec's topics."""

from __future__ import annotations

import keyword
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field as PydanticField
from pydantic import model_validator

from ..base import (
    FIELD_TYPES,
    SQL_NAME_ADVICE,
    TOPIC_NAME_ADVICE,
    Rendered,
    Strict,
    TypeName,
    problem,
    rule,
    section_of,
    words,
)
from .database import HEARTBEAT_PREFIX, RESERVED_TABLES, _capture
from .outbox import domain_tables

if TYPE_CHECKING:
    from ..spec import Spec

NAME = "cdc"
EXAMPLE: str | None = "cdc: {table: customers, key: id, columns: [{name: id, type: long}, {name: name, type: string}]}"
PROCESS = False


class SpecColumn(Strict):
    name: Annotated[str, rule(r"[a-z][a-z0-9_]{0,62}", SQL_NAME_ADVICE)]
    type: TypeName
    optional: bool = False

    @model_validator(mode="after")
    def _usable(self) -> SpecColumn:
        if keyword.iskeyword(self.name) or keyword.issoftkeyword(self.name):
            raise problem(f'"{self.name}" is a Python keyword; type another name, e.g. {self.name}_value.', loc="name")
        return self


class SpecCdc(Strict):
    """The `cdc` pattern: a table of the service's database, captured by Debezium; the service consumes its
    changes as typed change events."""

    table: Annotated[str, rule(r"[a-z][a-z0-9_]{0,62}", SQL_NAME_ADVICE)]
    key: Annotated[str, rule(r"[a-z][a-z0-9_]{0,62}", "name the column that is the table's primary key, e.g. key: id.")]
    columns: Annotated[list[SpecColumn], PydanticField(min_length=1, max_length=200)]
    topic: Annotated[str, rule(r"(?!\.{1,2}$)[A-Za-z0-9._-]{1,244}", TOPIC_NAME_ADVICE)] | None = None
    partitions: Annotated[int, PydanticField(ge=1, le=1000)] = 3

    @model_validator(mode="after")
    def _keyed(self) -> SpecCdc:
        seen: set[str] = set()
        for index, column in enumerate(self.columns):
            if column.name in seen:
                raise problem(f'"{column.name}" appears twice; keep one.', loc=f"columns[{index}].name")
            seen.add(column.name)
        key = next((column for column in self.columns if column.name == self.key), None)
        if key is None:
            raise problem(
                f'the key "{self.key}" must be one of the columns; add it, or name another, '
                f"e.g. key: {self.columns[0].name}.",
                loc="key",
            )
        if key.optional:
            raise problem(f'the key column "{self.key}" cannot be optional; drop `optional`.', loc="key")
        if self.table in RESERVED_TABLES:
            raise problem(f'"{self.table}" is a table of the service itself; type another name.', loc="table")
        return self


def cdc_topic(cdc: SpecCdc) -> str:
    """The topic the captured table's changes land on: as the spec names it, else after the table."""
    return cdc.topic or f"{cdc.table.replace('_', '-')}.changes"


ADVICE: dict[str, str] = {
    "cdc": "write a mapping, e.g. `cdc: {table: customers, key: id, columns: [{name: id, type: long}, "
    "{name: name, type: string}]}`.",
    "cdc.table": SQL_NAME_ADVICE,
    "cdc.key": "name the column that is the table's primary key, e.g. key: id.",
    "cdc.columns": "list the table's columns, e.g. `columns: [{name: id, type: long}, {name: name, type: string}]`.",
    "cdc.columns.name": SQL_NAME_ADVICE,
    "cdc.columns.type": f"type one of {', '.join(FIELD_TYPES)}.",
    "cdc.columns.optional": "type true or false (true: the column may be NULL).",
    "cdc.topic": TOPIC_NAME_ADVICE,
    "cdc.partitions": "type a whole number from 1 to 1000, e.g. 3.",
}

KEYS: dict[str, tuple[str, ...]] = {"cdc": tuple(SpecCdc.model_fields), "cdc.columns": tuple(SpecColumn.model_fields)}


def section(spec: Spec) -> SpecCdc | None:
    return section_of(spec, NAME, SpecCdc)


def check(spec: Spec, taken: set[str]) -> set[str]:
    cdc = section(spec)
    if cdc is None:
        return set()
    topic = cdc_topic(cdc)
    if topic in taken or topic.endswith(".dlq"):
        raise problem(
            f'the change topic "{topic}" clashes with a topic of the spec or a dead-letter topic; '
            f"name another, e.g. topic: {cdc.table.replace('_', '-')}.cdc.",
            loc="cdc.topic" if cdc.topic else "cdc.table",
        )
    if "." in topic and "_" in topic:
        raise problem(
            f'"{topic}" mixes "." and "_", which collide in Kafka metric names; use one of them, '
            f"e.g. {topic.replace('_', '-')}.",
            loc="cdc.topic",
        )
    if cdc.table in domain_tables(spec):
        raise problem(
            f'"{cdc.table}" is the outbox\'s domain table of a topic; type another table name.',
            loc="cdc.table",
        )
    return {topic}


def answer_problems(spec: dict[str, Any], parsed: Spec) -> list[str]:
    if any(topic.consumed for topic in parsed.topics):
        return []
    return [
        "patterns: cdc consumes its change topic through the runner of the spec's consumed topics, and no topic "
        "is consumed: mark a topic `consumed: true`, or unselect cdc."
    ]


def _cdc_connector(package_name: str, cdc: SpecCdc) -> dict[str, str]:
    capture = _capture(f"{package_name}_cdc", cdc.table)
    del capture["heartbeat.action.query"]
    return {
        **capture,
        # The rows already there first (op "r"), then every change from the slot. The connector makes its slot and
        # publication at its first start, right before its snapshot: a slot made earlier would stream again the rows
        # the snapshot reads. Its heartbeat confirms the slot's position on its own (no row to update).
        "publication.autocreate.mode": "filtered",
        "snapshot.mode": "initial",
        "transforms": "topic",
        "transforms.topic.type": "org.apache.kafka.connect.transforms.RegexRouter",
        # Only the table's records: the heartbeat records keep their own topic.
        "transforms.topic.regex": f"{capture['topic.prefix']}\\.public\\.{cdc.table}",
        "transforms.topic.replacement": cdc_topic(cdc),
        # Plain JSON change events, whatever the worker's defaults: {"before", "after", "op", "source", ...}.
        "key.converter": "org.apache.kafka.connect.json.JsonConverter",
        "key.converter.schemas.enable": "false",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter.schemas.enable": "false",
    }


class ColumnModel(Rendered):
    name: str
    type: TypeName
    py_type: str
    sql: str
    optional: bool


class CdcModel(Rendered):
    table: str
    key: str
    topic: str
    dlq: str
    partitions: int
    ident: str
    class_name: str
    change_class: str
    change_snake: str
    columns: list[ColumnModel]
    connector: str
    config: dict[str, str]
    heartbeat_topic: str


def derive(spec: Spec, package_name: str) -> dict[str, Any] | None:
    cdc = section(spec)
    if cdc is None:
        return None
    topic = cdc_topic(cdc)
    return {
        "table": cdc.table,
        "key": cdc.key,
        "topic": topic,
        "dlq": f"{topic}.dlq",
        "partitions": cdc.partitions,
        "ident": "_".join(words(topic)).lower(),
        "class_name": "".join(word.capitalize() for word in cdc.table.split("_")) + "Row",
        "change_class": "".join(word.capitalize() for word in cdc.table.split("_")) + "Change",
        "change_snake": f"{cdc.table}_change",
        "columns": [
            {
                "name": column.name,
                "type": column.type,
                "py_type": FIELD_TYPES[column.type].python,
                "sql": FIELD_TYPES[column.type].sql,
                "optional": column.optional,
            }
            for column in cdc.columns
        ],
        "connector": f"{package_name.replace('_', '-')}-cdc",
        "config": _cdc_connector(package_name, cdc),
        "heartbeat_topic": f"{HEARTBEAT_PREFIX}.{_cdc_connector(package_name, cdc)['topic.prefix']}",
    }


def consumed_topics(section: dict[str, Any]) -> list[dict[str, Any]]:
    """The change topic, which the runner consumes beside the spec's topics: its class and handler method."""
    return [
        {
            "ident": section["ident"],
            "name": section["topic"],
            "partitions": section["partitions"],
            "module": "patterns.cdc.changes",
            "class_name": section["change_class"],
            "snake": section["change_snake"],
            "doc": f"The changes of the {section['table']} table, written by Debezium as JSON: consumed like a topic "
            "of the spec, never published by the service.",
            "handler_doc": [
                f'A row of {section["table"]} was read by the snapshot (op "r"), created, updated or deleted; '
                "before and",
                "after are the row on either side. Repeats (after a crash) carry the same event_id.",
            ],
            "handler_log": f"{section['table']} %s {section['key']}=%s at %s",
            "handler_log_args": "event.op, event.key, event.source.lsn",
        }
    ]


def stored_topics(section: dict[str, Any]) -> list[str]:
    return []


SECTION = SpecCdc
MODEL = CdcModel
