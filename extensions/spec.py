"""The `spec` answer as a typed model: validation with advice, and the derived `model` the templates render from.

Copier loads this file through `_jinja_extensions` (copier-template-extensions resolves the path), which makes
the template need trust: `copier copy --trust` / `copier update --trust`. It adds these filters:

    {{ spec | spec_problems }}               the problems, one a line, or "" when the spec is valid
    {{ spec | spec_consumes }}               whether the service consumes a topic
    {{ patterns | pattern_problems(spec) }}  what the chosen patterns miss in the spec, one a line, or ""
    {{ spec | spec_model(package_name, patterns) }}
                                             the normalised model as JSON (names in every casing, types per language)

The file stands alone (Copier imports it by path), using only pydantic and jinja2, which Copier itself needs.
"""

from __future__ import annotations

import json
import keyword
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from jinja2 import Environment
from jinja2.ext import Extension
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError, model_validator
from pydantic import Field as PydanticField
from pydantic_core import PydanticCustomError


@dataclass(frozen=True)
class FieldType:
    python: str
    avro: str | dict[str, str]
    sql: str


# The one list of field types: the spec's names, and what each becomes in Python and in Avro.
FIELD_TYPES: dict[str, FieldType] = {
    "string": FieldType("str", "string", "text"),
    "int": FieldType("int", "int", "integer"),
    "long": FieldType("int", "long", "bigint"),
    "float": FieldType("float", "float", "real"),
    "double": FieldType("float", "double", "double precision"),
    "boolean": FieldType("bool", "boolean", "boolean"),
    "timestamp": FieldType("datetime", {"type": "long", "logicalType": "timestamp-millis"}, "timestamptz"),
}
TypeName = Literal["string", "int", "long", "float", "double", "boolean", "timestamp"]

# The one list of reserved names: the envelope every event carries, set by the service.
ENVELOPE: tuple[dict[str, Any], ...] = (
    {
        "name": "event_id",
        "type": {"type": "string", "logicalType": "uuid"},
        "doc": "Unique per event; consumers de-duplicate on it.",
    },
    {
        "name": "occurred_at",
        "type": {"type": "long", "logicalType": "timestamp-millis"},
        "doc": "When the event happened (UTC).",
    },
)
RESERVED: tuple[str, ...] = (*(field["name"] for field in ENVELOPE), "type")


def _rule(pattern: str, advice: str) -> Any:
    """A string that must match `pattern`; else the problem is `advice`."""
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise PydanticCustomError("spec_rule", advice)
        return value

    return AfterValidator(check)


def _problem(advice: str, loc: str | None = None) -> PydanticCustomError:
    """A problem of the model being checked, or (`loc`) of one of its keys, e.g. loc="name"."""
    if loc is None:
        return PydanticCustomError("spec_rule", advice)
    return PydanticCustomError("spec_rule_at", "{loc}\x00" + advice, {"loc": loc})


class _Strict(BaseModel):
    # Unknown keys are refused: a typo, or a flow mapping split at a comma, must not pass silently.
    model_config = ConfigDict(extra="forbid", strict=True)


FIELD_NAME_ADVICE = "type a field name in snake_case, e.g. task_id."


class SpecField(_Strict):
    name: Annotated[str, _rule(r"[a-z][a-z0-9_]{0,63}", FIELD_NAME_ADVICE)]
    type: TypeName
    optional: bool = False
    doc: str = ""

    @model_validator(mode="after")
    def _not_reserved(self) -> SpecField:
        if self.name in RESERVED:
            raise _problem(f'"{self.name}" is set by the service on every event; pick another name.', loc="name")
        if keyword.iskeyword(self.name) or keyword.issoftkeyword(self.name):
            raise _problem(f'"{self.name}" is a Python keyword; type another name, e.g. {self.name}_value.', loc="name")
        return self


class SpecEvent(_Strict):
    name: Annotated[str, _rule(r"[A-Z][A-Za-z0-9]{0,99}", "type an event name in PascalCase, e.g. TaskCreated.")]
    doc: str | None = None
    fields: Annotated[list[SpecField], PydanticField(min_length=1)]

    @model_validator(mode="after")
    def _unique_fields(self) -> SpecEvent:
        seen: set[str] = set()
        for index, field in enumerate(self.fields):
            if field.name in seen:
                raise _problem(f'"{field.name}" appears twice in {self.name}; keep one.', loc=f"fields[{index}].name")
            seen.add(field.name)
        return self


class SpecTopic(_Strict):
    name: Annotated[
        str,
        _rule(
            r"(?!\.{1,2}$)[A-Za-z0-9._-]{1,244}",
            'type a Kafka topic name of letters, digits, ".", "_" or "-", at most 244 characters '
            '(249 less the ".dlq" suffix), e.g. agent.tasks.',
        ),
    ]
    doc: str | None = None
    partitions: Annotated[int, PydanticField(ge=1, le=1000)] = 3
    key: Annotated[
        str,
        _rule(
            r"[a-z][a-z0-9_]*",
            "name the field whose value keys each record (it orders events per entity), e.g. key: task_id.",
        ),
    ]
    route: Annotated[str, _rule(r"(/[a-z0-9][a-z0-9-]*)+", "type an HTTP path of lower-case segments, e.g. /tasks.")]
    consumed: bool = True
    emits_to: str | None = None
    events: Annotated[list[SpecEvent], PydanticField(min_length=1)]

    @model_validator(mode="before")
    @classmethod
    def _default_route(cls, data: Any) -> Any:
        if isinstance(data, dict) and "route" not in data and isinstance(data.get("name"), str):
            words = re.sub(r"[^A-Za-z0-9]+", " ", data["name"]).strip().lower().split()
            return {**data, "route": "/" + ("-".join(words) or "events")}
        return data

    @model_validator(mode="after")
    def _checks(self) -> SpecTopic:
        if "." in self.name and "_" in self.name:
            raise _problem(
                f'"{self.name}" mixes "." and "_", which collide in Kafka metric names; use one of them, '
                f"e.g. {self.name.replace('_', '.')}.",
                loc="name",
            )
        for index, event in enumerate(self.events):
            if self.key not in {field.name for field in event.fields}:
                raise _problem(
                    f'the topic key "{self.key}" must be a field of every event on {self.name}; '
                    "add it or change `key`.",
                    loc=f"events[{index}]",
                )
        return self


TOPIC_NAME_ADVICE = (
    'type a Kafka topic name of letters, digits, ".", "_" or "-", at most 244 characters, e.g. agent.tasks.audit.'
)


class SpecFanout(_Strict):
    """The `fanout` pattern: every event of `topic` reaches each channel through a consumer group of its own."""

    topic: str
    channels: Annotated[
        list[
            Annotated[
                str, _rule(r"[a-z][a-z0-9]{0,30}", "type a channel name of lower-case letters and digits, e.g. email.")
            ]
        ],
        PydanticField(min_length=1, max_length=20),
    ]

    @model_validator(mode="after")
    def _unique_channels(self) -> SpecFanout:
        for index, channel in enumerate(self.channels):
            if channel in self.channels[:index]:
                raise _problem(f'"{channel}" appears twice; keep one.', loc=f"channels[{index}]")
        return self


class SpecAudit(_Strict):
    """The `audit` pattern: an append-only, hash-chained log of every event the service publishes and processes."""

    topic: Annotated[str, _rule(r"(?!\.{1,2}$)[A-Za-z0-9._-]{1,240}", TOPIC_NAME_ADVICE)] | None = None
    partitions: Annotated[int, PydanticField(ge=1, le=1000)] = 3
    retention_days: Annotated[int, PydanticField(ge=1, le=36500)] | None = None


IDENT_ADVICE = "type a name in snake_case (it names a Python method), e.g. reserve_credits."


class SpecSagaStep(_Strict):
    """One step of the saga: its handler, the handler that undoes it, and how long it may take."""

    name: Annotated[str, _rule(r"[a-z][a-z0-9_]{0,63}", IDENT_ADVICE)]
    compensation: Annotated[str, _rule(r"[a-z][a-z0-9_]{0,63}", IDENT_ADVICE)] | None = None
    timeout_seconds: Annotated[int, PydanticField(ge=1, le=86_400)] = 60


class SpecSaga(_Strict):
    """The `saga` pattern: steps run in order by an orchestrator; on a failure the completed steps' compensations
    run in reverse order."""

    name: Annotated[str, _rule(r"[a-z][a-z0-9_]{0,40}", "type a saga name in snake_case, e.g. task_run.")]
    steps: Annotated[list[SpecSagaStep], PydanticField(min_length=1, max_length=50)]
    partitions: Annotated[int, PydanticField(ge=1, le=1000)] = 3

    @model_validator(mode="after")
    def _distinct_handlers(self) -> SpecSaga:
        seen: set[str] = set()
        for index, step in enumerate(self.steps):
            for key, handler in (("name", step.name), ("compensation", step.compensation)):
                if handler is None:
                    continue
                if keyword.iskeyword(handler) or keyword.issoftkeyword(handler):
                    raise _problem(
                        f'"{handler}" is a Python keyword; type another name, e.g. {handler}_step.',
                        loc=f"steps[{index}].{key}",
                    )
                if handler in seen:
                    raise _problem(
                        f'"{handler}" names two handlers; each step and compensation needs a name of its own, '
                        f"e.g. {handler}_{index + 1}.",
                        loc=f"steps[{index}].{key}",
                    )
                seen.add(handler)
        return self


class SpecOutbox(_Strict):
    """The `outbox` pattern: the POST routes of these topics write their event into the database with the domain
    row, in one transaction; Debezium's outbox event router publishes it from the write-ahead log."""

    topics: Annotated[list[str], PydanticField(min_length=1)] | None = None


SQL_NAME_ADVICE = "type a table or column name in snake_case, e.g. customers."


class SpecColumn(_Strict):
    name: Annotated[str, _rule(r"[a-z][a-z0-9_]{0,62}", SQL_NAME_ADVICE)]
    type: TypeName
    optional: bool = False

    @model_validator(mode="after")
    def _usable(self) -> SpecColumn:
        if keyword.iskeyword(self.name) or keyword.issoftkeyword(self.name):
            raise _problem(f'"{self.name}" is a Python keyword; type another name, e.g. {self.name}_value.', loc="name")
        return self


class SpecCdc(_Strict):
    """The `cdc` pattern: a table of the service's database, captured by Debezium; the service consumes its
    changes as typed change events."""

    table: Annotated[str, _rule(r"[a-z][a-z0-9_]{0,62}", SQL_NAME_ADVICE)]
    key: Annotated[
        str, _rule(r"[a-z][a-z0-9_]{0,62}", "name the column that is the table's primary key, e.g. key: id.")
    ]
    columns: Annotated[list[SpecColumn], PydanticField(min_length=1, max_length=200)]
    topic: Annotated[str, _rule(r"(?!\.{1,2}$)[A-Za-z0-9._-]{1,244}", TOPIC_NAME_ADVICE)] | None = None
    partitions: Annotated[int, PydanticField(ge=1, le=1000)] = 3

    @model_validator(mode="after")
    def _keyed(self) -> SpecCdc:
        seen: set[str] = set()
        for index, column in enumerate(self.columns):
            if column.name in seen:
                raise _problem(f'"{column.name}" appears twice; keep one.', loc=f"columns[{index}].name")
            seen.add(column.name)
        key = next((column for column in self.columns if column.name == self.key), None)
        if key is None:
            raise _problem(
                f'the key "{self.key}" must be one of the columns; add it, or name another, '
                f"e.g. key: {self.columns[0].name}.",
                loc="key",
            )
        if key.optional:
            raise _problem(f'the key column "{self.key}" cannot be optional; drop `optional`.', loc="key")
        if self.table in RESERVED_TABLES:
            raise _problem(f'"{self.table}" is a table of the service itself; type another name.', loc="table")
        return self


def _table_of(topic: str) -> str:
    """The domain table of an outbox topic: the topic's name in snake_case."""
    return "_".join(_words(topic)).lower()


# Tables the service makes itself (the outbox, the migrations it applied, the processed event ids).
RESERVED_TABLES = ("outbox", "schema_migrations", "processed_events")


def cdc_topic(cdc: SpecCdc) -> str:
    """The topic the captured table's changes land on: as the spec names it, else after the table."""
    return cdc.topic or f"{cdc.table.replace('_', '-')}.changes"


def saga_topics(saga: SpecSaga) -> dict[str, str]:
    """The saga's own topics: its commands and its compacted state."""
    slug = saga.name.replace("_", "-")
    return {"commands": f"saga.{slug}.commands", "state": f"saga.{slug}.state"}


def audit_topic(spec: Spec) -> str:
    """The audit log's topic: as the spec names it, else beside the first topic."""
    named = spec.audit.topic if spec.audit is not None else None
    return named or f"{spec.topics[0].name}.audit"


class Spec(_Strict):
    consumer_group: Annotated[
        str,
        _rule(
            r"[A-Za-z0-9._-]{1,249}", 'type a group id of letters, digits, ".", "_" or "-", e.g. agent-task-workers.'
        ),
    ]
    topics: Annotated[list[SpecTopic], PydanticField(min_length=1)]
    # What the patterns chosen in the `patterns` answer need; ignored by the service when its pattern is not chosen.
    fanout: SpecFanout | None = None
    audit: SpecAudit | None = None
    saga: SpecSaga | None = None
    outbox: SpecOutbox | None = None
    cdc: SpecCdc | None = None

    @model_validator(mode="after")
    def _patterns(self) -> Spec:
        names = [topic.name for topic in self.topics]
        taken = set(names) | {f"{name}.dlq" for name in names}
        if self.fanout is not None:
            if self.fanout.topic not in names:
                raise _problem(
                    f"name the topic of the spec whose events every channel receives, e.g. topic: {names[0]}.",
                    loc="fanout.topic",
                )
            for index, channel in enumerate(self.fanout.channels):
                if f"{self.fanout.topic}.{channel}.dlq" in taken:
                    raise _problem(
                        f'the dead-letter topic of channel "{channel}" would be {self.fanout.topic}.{channel}.dlq, '
                        "a topic of the spec already; type another channel name.",
                        loc=f"fanout.channels[{index}]",
                    )
        if self.audit is not None and self.audit.topic is not None:
            topic = self.audit.topic
            if topic in taken or topic.endswith(".dlq"):
                raise _problem(
                    f'"{topic}" clashes with a topic of the spec or a dead-letter topic; type a distinct name, '
                    f"e.g. {names[0]}.audit.",
                    loc="audit.topic",
                )
            if "." in topic and "_" in topic:
                raise _problem(
                    f'"{topic}" mixes "." and "_", which collide in Kafka metric names; use one of them, '
                    f"e.g. {topic.replace('_', '.')}.",
                    loc="audit.topic",
                )
        if self.saga is not None:
            for topic in saga_topics(self.saga).values():
                if topic in taken or (self.audit is not None and topic == self.audit.topic):
                    raise _problem(
                        f"the saga's topic {topic} is a topic of the spec already; type another saga name, "
                        f"e.g. {self.saga.name}_saga.",
                        loc="saga.name",
                    )
        if self.outbox is not None and self.outbox.topics is not None:
            for index, name in enumerate(self.outbox.topics):
                if name not in names:
                    raise _problem(
                        f'"{name}" is not a topic of the spec; name a topic whose POST route writes to the outbox, '
                        f"e.g. {names[0]}.",
                        loc=f"outbox.topics[{index}]",
                    )
                if name in self.outbox.topics[:index]:
                    raise _problem(f'"{name}" appears twice; keep one.', loc=f"outbox.topics[{index}]")
        if self.outbox is not None:
            for name in self.outbox.topics or names:
                if _table_of(name) in RESERVED_TABLES:
                    raise _problem(
                        f'the domain table of {name} would be "{_table_of(name)}", a table of the service itself; '
                        "rename the topic or leave it out of the outbox.",
                        loc="outbox.topics",
                    )
        if self.cdc is not None:
            topic = cdc_topic(self.cdc)
            if topic in taken or topic.endswith(".dlq"):
                raise _problem(
                    f'the change topic "{topic}" clashes with a topic of the spec or a dead-letter topic; '
                    f"name another, e.g. topic: {self.cdc.table.replace('_', '-')}.cdc.",
                    loc="cdc.topic" if self.cdc.topic else "cdc.table",
                )
            if "." in topic and "_" in topic:
                raise _problem(
                    f'"{topic}" mixes "." and "_", which collide in Kafka metric names; use one of them, '
                    f"e.g. {topic.replace('_', '-')}.",
                    loc="cdc.topic",
                )
            domain_tables = {_table_of(name) for name in (self.outbox.topics or names)} if self.outbox else set()
            if self.cdc.table in domain_tables:
                raise _problem(
                    f'"{self.cdc.table}" is the outbox\'s domain table of a topic; type another table name.',
                    loc="cdc.table",
                )
        return self

    @model_validator(mode="after")
    def _across_topics(self) -> Spec:
        names: list[str] = []
        events: set[str] = set()
        for t, topic in enumerate(self.topics):
            if topic.name in names or f"{topic.name}.dlq" in names or topic.name.endswith(".dlq"):
                raise _problem(
                    f'"{topic.name}" clashes with another topic or its dead-letter topic; type a distinct name.',
                    loc=f"topics[{t}].name",
                )
            names.append(topic.name)
            for e, event in enumerate(topic.events):
                if event.name in events:
                    raise _problem(
                        f'"{event.name}" is declared twice; event names must be unique across topics.',
                        loc=f"topics[{t}].events[{e}].name",
                    )
                events.add(event.name)
        all_names = [topic.name for topic in self.topics]
        for t, topic in enumerate(self.topics):
            if topic.emits_to is None:
                continue
            if not topic.consumed:
                raise _problem(
                    "only a consumed topic emits events; drop `emits_to` or `consumed: false`.",
                    loc=f"topics[{t}].emits_to",
                )
            if topic.emits_to not in all_names or topic.emits_to == topic.name:
                example = next((name for name in all_names if name != topic.name), "agent.task.history")
                raise _problem(
                    f"name another topic of the spec that handlers of {topic.name} publish to, "
                    f"e.g. emits_to: {example}.",
                    loc=f"topics[{t}].emits_to",
                )
        return self


# What to type when a value has the wrong type or is missing, by the key's place in the spec.
ADVICE = {
    "consumer_group": 'type a group id of letters, digits, ".", "_" or "-", e.g. agent-task-workers.',
    "topics": "list at least one topic, e.g. `topics: [{name: agent.tasks, key: task_id, events: [...]}]`.",
    "topics.name": "type a Kafka topic name, e.g. agent.tasks.",
    "topics.doc": 'type one sentence; quote it if it holds ": " or starts with a symbol.',
    "topics.partitions": "type a whole number from 1 to 1000, e.g. 6.",
    "topics.key": "name the field whose value keys each record (it orders events per entity), e.g. key: task_id.",
    "topics.route": "type an HTTP path of lower-case segments, e.g. /tasks.",
    "topics.consumed": "type true or false.",
    "topics.emits_to": "name another topic of the spec that this topic's handlers publish to.",
    "topics.events": "list at least one event, e.g. `events: [{name: TaskCreated, fields: [{name: task_id, "
    "type: string}]}]`.",
    "topics.events.name": "type an event name in PascalCase, e.g. TaskCreated.",
    "topics.events.doc": 'type one sentence; quote it if it holds ", " or ": ".',
    "topics.events.fields": "list at least one field, e.g. `fields: [{name: task_id, type: string}]`.",
    "topics.events.fields.name": FIELD_NAME_ADVICE,
    "topics.events.fields.type": f"type one of {', '.join(FIELD_TYPES)}.",
    "topics.events.fields.optional": "type true or false.",
    "topics.events.fields.doc": 'type one sentence; quote it if it holds ", " or ": ".',
    "fanout": "write a mapping, e.g. `fanout: {topic: agent.tasks, channels: [email, sms, push]}`.",
    "fanout.topic": "name the topic of the spec whose events every channel receives, e.g. topic: agent.tasks.",
    "fanout.channels": "list the channels by name, e.g. `channels: [email, sms, push]`.",
    "audit": "write a mapping, e.g. `audit: {retention_days: 365}`, or leave it out for the defaults.",
    "audit.topic": TOPIC_NAME_ADVICE,
    "audit.partitions": "type a whole number from 1 to 1000, e.g. 3.",
    "audit.retention_days": "type a whole number of days from 1 to 36500, or leave it out to keep the log forever.",
    "saga": "write a mapping, e.g. `saga: {name: task_run, steps: [{name: reserve_credits, compensation: "
    "release_credits}, {name: run_agent}]}`.",
    "saga.name": "type a saga name in snake_case, e.g. task_run.",
    "saga.steps": "list the steps in the order they run, e.g. `steps: [{name: reserve_credits, compensation: "
    "release_credits, timeout_seconds: 30}, {name: run_agent}]`.",
    "saga.steps.name": IDENT_ADVICE,
    "saga.steps.compensation": "name the handler that undoes the step, e.g. compensation: release_credits; "
    "or leave it out when there is nothing to undo.",
    "saga.steps.timeout_seconds": "type a whole number of seconds from 1 to 86400, e.g. 30.",
    "saga.partitions": "type a whole number from 1 to 1000, e.g. 3.",
    "outbox": "write a mapping, e.g. `outbox: {topics: [agent.tasks]}`, or `outbox: {}` for every topic.",
    "outbox.topics": "list the topics whose POST routes write to the outbox, e.g. `topics: [agent.tasks]`; "
    "or leave it out for every topic.",
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

KEYS = {
    "": tuple(Spec.model_fields),
    "fanout": tuple(SpecFanout.model_fields),
    "audit": tuple(SpecAudit.model_fields),
    "saga": tuple(SpecSaga.model_fields),
    "saga.steps": tuple(SpecSagaStep.model_fields),
    "outbox": tuple(SpecOutbox.model_fields),
    "cdc": tuple(SpecCdc.model_fields),
    "cdc.columns": tuple(SpecColumn.model_fields),
    "topics": tuple(SpecTopic.model_fields),
    "topics.events": tuple(SpecEvent.model_fields),
    "topics.events.fields": tuple(SpecField.model_fields),
}


def _path(loc: Sequence[str | int]) -> str:
    path = "spec"
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _shape(loc: Sequence[str | int]) -> str:
    return ".".join(part for part in loc if isinstance(part, str))


def _message(error: Any) -> str:
    loc = [part for part in error["loc"] if part not in {"function-after[check(), str]"}]
    kind = error["type"]
    if kind == "extra_forbidden":
        parent, key = loc[:-1], loc[-1]
        known = ", ".join(f"`{name}`" for name in KEYS.get(_shape(parent), ()))
        hint = ""
        if _shape(parent).endswith(("fields", "events")) or _shape(parent) == "topics":
            hint = (
                ' If a `doc` holds a comma, quote it (doc: "..., ..."): in a {...} mapping the comma '
                "ends the value and starts a new key."
            )
        return f'{_path(parent)}: unknown key "{key}"; the keys here are {known}.{hint}'
    if kind == "spec_rule_at":
        where, advice = error["msg"].split("\x00", 1)
        return f"{_path(loc)}.{where}: {advice}" if loc else f"spec.{where}: {advice}"
    if kind == "spec_rule":
        # Raised by a model's own check: it concerns the model at `loc`, or a string rule at the key itself.
        return f"{_path(loc)}: {error['msg']}"
    if kind == "missing":
        return f"{_path(loc)}: missing; {ADVICE.get(_shape(loc), 'add it')}"
    advice = ADVICE.get(_shape(loc))
    if advice is None or isinstance(loc[-1], int):  # a whole topic, event or field that is not a mapping
        return f"{_path(loc)}: write a mapping with the keys {', '.join(KEYS.get(_shape(loc), ()))}."
    return f"{_path(loc)}: {advice}"


def problems(spec: Any) -> list[str]:
    """Every problem of the `spec` answer, each with its path and what to type instead; [] when it is valid."""
    if not isinstance(spec, dict):
        return ["The spec must be a mapping with `consumer_group` and `topics`; see docs/spec.md."]
    try:
        Spec.model_validate(spec)
    except ValidationError as invalid:
        return list(dict.fromkeys(_message(error) for error in invalid.errors()))
    return []


def parse(spec: Any) -> Spec:
    """The typed spec; ValueError with every problem when it is invalid."""
    found = problems(spec)
    if found:
        raise ValueError("\n".join(found))
    return Spec.model_validate(spec)


# The `patterns` answer's choices, each with what it needs from the spec (None: nothing, its defaults fit).
PATTERNS: dict[str, str | None] = {
    "fanout": "fanout: {topic: agent.tasks, channels: [email, sms, push]}",
    "audit": None,
    "saga": "saga: {name: task_run, steps: [{name: reserve_credits, compensation: release_credits}, "
    "{name: run_agent}]}",
    "outbox": None,
    "cdc": "cdc: {table: customers, key: id, columns: [{name: id, type: long}, {name: name, type: string}]}",
}


def pattern_problems(patterns: Any, spec: Any) -> list[str]:
    """What the chosen `patterns` miss in a valid `spec`, or what the spec configures for an unchosen pattern."""
    if problems(spec):
        return []  # the spec question reported those already
    chosen = set(patterns or ())
    found = []
    for name, example in PATTERNS.items():
        configured = spec.get(name) is not None
        if name in chosen and example is not None and not configured:
            found.append(f"spec.{name}: missing; the {name} pattern needs it, e.g. `{example}`; or unselect {name}.")
        if name not in chosen and configured:
            found.append(f"spec.{name} is set but the {name} pattern is not chosen: choose it, or drop spec.{name}.")
    consumes = any(topic.get("consumed", True) for topic in spec["topics"])
    if "cdc" in chosen and not consumes:
        found.append(
            "patterns: cdc consumes its change topic through the runner of the spec's consumed topics, and no topic "
            "is consumed: mark a topic `consumed: true`, or unselect cdc."
        )
    if "fanout" in chosen and not consumes:
        found.append(
            "patterns: fanout's channels run on the consumer runner of the spec's consumed topics, and no topic is "
            "consumed: mark a topic `consumed: true` (the fanned-out one will do), or unselect fanout."
        )
    if "audit" in chosen:
        parsed = Spec.model_validate(spec)
        taken = {name for topic in parsed.topics for name in (topic.name, f"{topic.name}.dlq")}
        if audit_topic(parsed) in taken:
            found.append(
                f"spec.audit.topic: the default {audit_topic(parsed)} is a topic of the spec already; "
                "name another, e.g. `audit: {topic: audit.log}`."
            )
    return found


def _words(name: str) -> list[str]:
    return re.sub(r"[^A-Za-z0-9]+", " ", name).strip().split()


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _effect(event: SpecEvent, target: SpecTopic | None) -> dict[str, Any] | None:
    """The event on `emits_to` a handler returns by default: the first whose required fields `event` can fill."""
    if target is None:
        return None
    own = {field.name: field for field in event.fields}
    for candidate in target.events:
        fits = all(
            field.name in own and own[field.name].type == field.type and not own[field.name].optional
            for field in candidate.fields
            if not field.optional
        )
        if fits:
            copies = [f.name for f in candidate.fields if f.name in own and own[f.name].type == f.type]
            return {"name": candidate.name, "copies": copies}
    return None


def _avro_field(field: SpecField) -> dict[str, Any]:
    avro = FIELD_TYPES[field.type].avro
    schema: dict[str, Any] = {"name": field.name}
    if field.optional:
        schema |= {"type": ["null", avro], "default": None}
    else:
        schema["type"] = avro
    if field.doc:
        schema["doc"] = field.doc
    return schema


POSTGRES_CONNECTOR = "io.debezium.connector.postgresql.PostgresConnector"
HEARTBEAT_TABLE = "debezium_heartbeat"
"""Made by the migration 0003_debezium_heartbeat.sql: one row, which each connector's heartbeat updates."""
HEARTBEAT_PREFIX = "debezium-heartbeat"


def _capture(name: str, table: str) -> dict[str, str]:
    """What every Debezium source of the service says: pgoutput (built into PostgreSQL), its own replication slot and
    a publication of its one table, and records and source offsets written in one Kafka transaction (KIP-618).

    `migrate` (the migration hook Job) makes the publication and the slot before the service takes traffic, so that
    the WAL keeps every row written before the connector first starts: the connector creates neither. A heartbeat
    every 10 s updates the row of HEARTBEAT_TABLE (in every publication, in no table.include.list), so the connector
    confirms the slot's position though its own table is quiet and the slot holds back no WAL of the database."""
    return {
        "connector.class": POSTGRES_CONNECTOR,
        "tasks.max": "1",
        "plugin.name": "pgoutput",
        "topic.prefix": name.replace("_", "-"),
        "table.include.list": f"public.{table}",
        "slot.name": name,
        "publication.name": name,
        "publication.autocreate.mode": "disabled",
        "heartbeat.interval.ms": "10000",
        "topic.heartbeat.prefix": HEARTBEAT_PREFIX,
        "heartbeat.action.query": f"UPDATE {HEARTBEAT_TABLE} SET beat = now()",
        "tombstones.on.delete": "false",
        "exactly.once.support": "required",
        # No __debezium.context.* headers on the records: consumers see the service's headers only.
        "extended.headers.enabled": "false",
        "header.converter": "org.apache.kafka.connect.storage.SimpleHeaderConverter",
    }


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


def _derive_patterns(spec: Spec, patterns: Sequence[str], package_name: str = "service") -> dict[str, Any]:
    """What the chosen patterns render from: names of their topics, groups and settings."""
    derived: dict[str, Any] = {
        "patterns": [name for name in PATTERNS if name in patterns],
        "fanout": None,
        "audit": None,
        "saga": None,
        "outbox": None,
        "cdc": None,
        "database": "outbox" in patterns or "cdc" in patterns,
        # The template pieces of each plug-in, in this order: template/{% if false %}patterns{% endif %}/<name>/.
        "parts": [
            *(["database"] if "outbox" in patterns or "cdc" in patterns else []),
            *(name for name in PATTERNS if name in patterns),
        ],
        # The plug-ins main.py lists, as modules of the package: the database's first, then the patterns'.
        "plugins": [
            *(["database"] if "outbox" in patterns or "cdc" in patterns else []),
            *(f"patterns.{name}" for name in PATTERNS if name in patterns),
        ],
        "heartbeat_table": HEARTBEAT_TABLE if "outbox" in patterns or "cdc" in patterns else None,
    }
    if "outbox" in patterns:
        chosen = (spec.outbox.topics if spec.outbox is not None else None) or [topic.name for topic in spec.topics]
        by_name = {topic.name: topic for topic in spec.topics}
        derived["outbox"] = {
            "topics": chosen,
            "tables": [
                {"topic": name, "ident": _table_of(name), "table": _table_of(name), "key": by_name[name].key}
                for name in chosen
            ],
            "connector": f"{package_name.replace('_', '-')}-outbox",
            "config": _outbox_connector(package_name),
            "heartbeat_topic": f"{HEARTBEAT_PREFIX}.{_outbox_connector(package_name)['topic.prefix']}",
        }
    if "cdc" in patterns and spec.cdc is not None:
        cdc = spec.cdc
        topic = cdc_topic(cdc)
        derived["cdc"] = {
            "table": cdc.table,
            "key": cdc.key,
            "topic": topic,
            "dlq": f"{topic}.dlq",
            "partitions": cdc.partitions,
            "ident": "_".join(_words(topic)).lower(),
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
    if "fanout" in patterns and spec.fanout is not None:
        source = next(topic for topic in spec.topics if topic.name == spec.fanout.topic)
        derived["fanout"] = {
            "topic": source.name,
            "topic_ident": "_".join(_words(source.name)).lower(),
            "partitions": source.partitions,
            "channels": [
                {
                    "name": channel,
                    "group": f"{spec.consumer_group}.{channel}",
                    "dlq": f"{source.name}.{channel}.dlq",
                }
                for channel in spec.fanout.channels
            ],
        }
    if "audit" in patterns:
        audit = spec.audit or SpecAudit()
        topic = audit_topic(spec)
        derived["audit"] = {
            "topic": topic,
            "intake": f"{topic}.intake",
            "partitions": audit.partitions,
            "sealer_group": f"{spec.consumer_group}.audit-sealer",
            "retention_ms": audit.retention_days * 86_400_000 if audit.retention_days else -1,
        }
    if "saga" in patterns and spec.saga is not None:
        saga = spec.saga
        slug = saga.name.replace("_", "-")
        derived["saga"] = {
            "name": saga.name,
            "slug": slug,
            "class_name": "".join(word.capitalize() for word in saga.name.split("_")),
            **saga_topics(saga),
            "partitions": saga.partitions,
            "group": f"{spec.consumer_group}.saga-{slug}",
            "route": f"/sagas/{slug}",
            "max_timeout_seconds": max(step.timeout_seconds for step in saga.steps),
            "steps": [step.model_dump() for step in saga.steps],
        }
    return derived


class _Rendered(BaseModel):
    """A part of the render model: typed and frozen, and nothing but its fields (a name a template misspells is
    caught by tests/render/test_model_names.py, not rendered as empty text)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class FieldModel(_Rendered):
    name: str
    type: TypeName
    py_type: str
    optional: bool
    doc: str | None


class EffectModel(_Rendered):
    """The event on `emits_to` a handler returns by default, and the fields it copies from its cause."""

    name: str
    copies: list[str]


class EventModel(_Rendered):
    name: str
    snake: str
    doc: str
    effect: EffectModel | None
    fields: list[FieldModel]


class TopicModel(_Rendered):
    name: str
    dlq: str
    ident: str
    class_name: str
    doc: str
    partitions: int
    key: str
    route: str
    consumed: bool
    emits_to: str | None
    events: list[EventModel]
    stored: bool
    """Stored before it is published (the outbox): its 202 carries no partition or offset."""


class RecordModel(_Rendered):
    name: str
    topic: str
    file: str
    schema_: dict[str, Any] = PydanticField(alias="schema")


class OutboxTableModel(_Rendered):
    topic: str
    ident: str
    table: str
    key: str


class OutboxModel(_Rendered):
    topics: list[str]
    tables: list[OutboxTableModel]
    connector: str
    config: dict[str, str]
    heartbeat_topic: str


class ColumnModel(_Rendered):
    name: str
    type: TypeName
    py_type: str
    sql: str
    optional: bool


class CdcModel(_Rendered):
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


class ChannelModel(_Rendered):
    name: str
    group: str
    dlq: str


class FanoutModel(_Rendered):
    topic: str
    topic_ident: str
    partitions: int
    channels: list[ChannelModel]


class AuditModel(_Rendered):
    topic: str
    intake: str
    partitions: int
    sealer_group: str
    retention_ms: int


class SagaStepModel(_Rendered):
    name: str
    compensation: str | None
    timeout_seconds: int


class SagaModel(_Rendered):
    name: str
    slug: str
    class_name: str
    commands: str
    state: str
    partitions: int
    group: str
    route: str
    max_timeout_seconds: int
    steps: list[SagaStepModel]


class PluginTopicModel(_Rendered):
    """A topic a plug-in adds to those the runner consumes: its own event class and handler method."""

    ident: str
    name: str
    partitions: int
    module: str
    class_name: str
    snake: str
    doc: str
    handler_doc: list[str]
    handler_log: str
    handler_log_args: str


class RenderModel(_Rendered):
    """What every template renders from (`model`), derived from the spec and the chosen patterns."""

    consumer_group: str
    consumes: bool
    headless: bool
    topics: list[TopicModel]
    reserved: list[str]
    avro_namespace: str
    records: list[RecordModel]
    patterns: list[str]
    fanout: FanoutModel | None
    audit: AuditModel | None
    saga: SagaModel | None
    outbox: OutboxModel | None
    cdc: CdcModel | None
    database: bool
    parts: list[str]
    plugins: list[str]
    heartbeat_table: str | None
    deferred_publish: bool
    plugin_topics: list[PluginTopicModel]


def render_model(spec: Spec, package_name: str, patterns: Sequence[str] = ()) -> RenderModel:
    """The typed model; `derive` is its JSON form, as the templates see it."""
    return RenderModel.model_validate(derive_fields(spec, package_name, patterns))


def derive(spec: Spec, package_name: str, patterns: Sequence[str] = ()) -> dict[str, Any]:
    """The model every template renders from, checked against `RenderModel`."""
    return render_model(spec, package_name, patterns).model_dump(mode="json", by_alias=True)


def derive_fields(spec: Spec, package_name: str, patterns: Sequence[str] = ()) -> dict[str, Any]:
    """The render model's fields, as plain data."""
    by_name = {topic.name: topic for topic in spec.topics}
    namespace = f"{package_name}.events"
    topics = []
    records = []
    for topic in spec.topics:
        words = _words(topic.name)
        target = by_name.get(topic.emits_to) if topic.emits_to else None
        events = []
        for event in topic.events:
            doc = event.doc if event.doc is not None else f"{event.name} event."
            events.append(
                {
                    "name": event.name,
                    "snake": _snake(event.name),
                    "doc": doc,
                    "effect": _effect(event, target),
                    "fields": [
                        {
                            "name": field.name,
                            "type": field.type,
                            "py_type": FIELD_TYPES[field.type].python,
                            "optional": field.optional,
                            "doc": field.doc,
                        }
                        for field in event.fields
                    ],
                }
            )
            records.append(
                {
                    "name": event.name,
                    "topic": topic.name,
                    "file": f"{namespace}.{event.name}.avsc",
                    "schema": {
                        "type": "record",
                        "name": event.name,
                        "namespace": namespace,
                        "doc": doc,
                        "fields": [*ENVELOPE, *(_avro_field(field) for field in event.fields)],
                    },
                }
            )
        topics.append(
            {
                "name": topic.name,
                "dlq": f"{topic.name}.dlq",
                "ident": "_".join(words).lower(),
                "class_name": "".join(word.capitalize() for word in words),
                "doc": topic.doc if topic.doc is not None else f"Events on {topic.name}.",
                "partitions": topic.partitions,
                "key": topic.key,
                "route": topic.route,
                "consumed": topic.consumed,
                "emits_to": topic.emits_to,
                "events": events,
            }
        )
    derived = {
        "consumer_group": spec.consumer_group,
        # The cdc pattern consumes its change topic through the same runner as the spec's topics.
        "consumes": any(topic.consumed for topic in spec.topics) or ("cdc" in patterns and spec.cdc is not None),
        # A process without the HTTP API serves /metrics on METRICS_PORT: the worker, a saga orchestrator, a sealer.
        "headless": any(topic.consumed for topic in spec.topics)
        or ("cdc" in patterns and spec.cdc is not None)
        or "saga" in patterns
        or "audit" in patterns,
        "topics": topics,
        "reserved": list(RESERVED),
        "avro_namespace": namespace,
        "records": records,
        **_derive_patterns(spec, patterns, package_name),
    }
    return _with_capabilities(derived)


def _with_capabilities(model: dict[str, Any]) -> dict[str, Any]:
    """What the core templates render from where a pattern changes a topic, named by what it does rather than by the
    pattern: a topic `stored` before it is published (the outbox: its 202 carries no partition or offset), and the
    topics a plug-in adds to those the runner consumes (`plugin_topics`: a class of its own, a handler method each)."""
    stored = set(model["outbox"]["topics"]) if model["outbox"] else set()
    for topic in model["topics"]:
        topic["stored"] = topic["name"] in stored
    model["deferred_publish"] = bool(stored)
    cdc = model["cdc"]
    model["plugin_topics"] = (
        [
            {
                "ident": cdc["ident"],
                "name": cdc["topic"],
                "partitions": cdc["partitions"],
                "module": "patterns.cdc.changes",
                "class_name": cdc["change_class"],
                "snake": cdc["change_snake"],
                "doc": f"The changes of the {cdc['table']} table, written by Debezium as JSON: consumed like a topic "
                "of the spec, never published by the service.",
                "handler_doc": [
                    f'A row of {cdc["table"]} was read by the snapshot (op "r"), created, updated or deleted; before '
                    "and",
                    "after are the row on either side. Repeats (after a crash) carry the same event_id.",
                ],
                "handler_log": f"{cdc['table']} %s {cdc['key']}=%s at %s",
                "handler_log_args": "event.op, event.key, event.source.lsn",
            }
        ]
        if cdc
        else []
    )
    return model


class SpecExtension(Extension):
    """The filters `spec_problems` and `spec_model` for copier.yml."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.filters["spec_problems"] = lambda spec: "\n".join(problems(spec))
        environment.filters["spec_model"] = self._model
        environment.filters["spec_consumes"] = self._consumes
        environment.filters["pattern_problems"] = lambda patterns, spec: "\n".join(pattern_problems(patterns, spec))

    @staticmethod
    def _consumes(spec: Any) -> bool:
        """Whether the service consumes a topic (an invalid spec counts as consuming: it is refused anyway)."""
        return bool(problems(spec)) or any(topic.consumed for topic in Spec.model_validate(spec).topics)

    @staticmethod
    def _model(spec: Any, package_name: str, patterns: Sequence[str] = ()) -> str:
        """JSON (so YAML too) for a `type: yaml` question, in the model's own key order (`tojson` sorts keys)."""
        # Copier renders `model` only after `spec` passed its validator; an invalid spec here yields no model.
        return json.dumps(derive(Spec.model_validate(spec), package_name, patterns) if not problems(spec) else {})
