"""The spec's topics, their events and fields: validation with advice, and what the templates render from them."""

from __future__ import annotations

import keyword
import re
from typing import Annotated, Any, Literal

from pydantic import Field as PydanticField
from pydantic import model_validator

from .base import (
    ENVELOPE,
    FIELD_NAME_ADVICE,
    FIELD_TYPES,
    RESERVED,
    Rendered,
    Strict,
    TypeName,
    problem,
    rule,
    snake,
    words,
)


class SpecField(Strict):
    name: Annotated[str, rule(r"[a-z][a-z0-9_]{0,63}", FIELD_NAME_ADVICE)]
    type: TypeName
    optional: bool = False
    doc: str = ""

    @model_validator(mode="after")
    def _not_reserved(self) -> SpecField:
        if self.name in RESERVED:
            raise problem(f'"{self.name}" is set by the service on every event; pick another name.', loc="name")
        if keyword.iskeyword(self.name) or keyword.issoftkeyword(self.name):
            raise problem(f'"{self.name}" is a Python keyword; type another name, e.g. {self.name}_value.', loc="name")
        return self


class SpecEvent(Strict):
    name: Annotated[str, rule(r"[A-Z][A-Za-z0-9]{0,99}", "type an event name in PascalCase, e.g. TaskCreated.")]
    doc: str | None = None
    fields: Annotated[list[SpecField], PydanticField(min_length=1)]

    @model_validator(mode="after")
    def _unique_fields(self) -> SpecEvent:
        seen: set[str] = set()
        for index, field in enumerate(self.fields):
            if field.name in seen:
                raise problem(f'"{field.name}" appears twice in {self.name}; keep one.', loc=f"fields[{index}].name")
            seen.add(field.name)
        return self


class SpecTopic(Strict):
    name: Annotated[
        str,
        rule(
            r"(?!\.{1,2}$)[A-Za-z0-9._-]{1,244}",
            'type a Kafka topic name of letters, digits, ".", "_" or "-", at most 244 characters '
            '(249 less the ".dlq" suffix), e.g. agent.tasks.',
        ),
    ]
    doc: str | None = None
    partitions: Annotated[int, PydanticField(ge=1, le=1000)] = 3
    key: Annotated[
        str,
        rule(
            r"[a-z][a-z0-9_]*",
            "name the field whose value keys each record (it orders events per entity), e.g. key: task_id.",
        ),
    ]
    route: Annotated[str, rule(r"(/[a-z0-9][a-z0-9-]*)+", "type an HTTP path of lower-case segments, e.g. /tasks.")]
    consumed: bool = True
    delivery: Literal["stream", "queue"] = "stream"
    """`stream`: a consumer group, each partition in key order on one worker. `queue`: a share group (KIP-932),
    each record to any worker, acknowledged on its own: workers beyond the partition count, no order."""
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
            raise problem(
                f'"{self.name}" mixes "." and "_", which collide in Kafka metric names; use one of them, '
                f"e.g. {self.name.replace('_', '.')}.",
                loc="name",
            )
        if self.delivery == "queue" and not self.consumed:
            raise problem(
                f"{self.name} is a queue only for the service's own workers to take tasks from; "
                "drop `delivery: queue` or `consumed: false`.",
                loc="delivery",
            )
        for index, event in enumerate(self.events):
            if self.key not in {field.name for field in event.fields}:
                raise problem(
                    f'the topic key "{self.key}" must be a field of every event on {self.name}; '
                    "add it or change `key`.",
                    loc=f"events[{index}]",
                )
        return self


ADVICE: dict[str, str] = {
    "consumer_group": 'type a group id of letters, digits, ".", "_" or "-", e.g. agent-task-workers.',
    "topics": "list at least one topic, e.g. `topics: [{name: agent.tasks, key: task_id, events: [...]}]`.",
    "topics.name": "type a Kafka topic name, e.g. agent.tasks.",
    "topics.doc": 'type one sentence; quote it if it holds ": " or starts with a symbol.',
    "topics.partitions": "type a whole number from 1 to 1000, e.g. 6.",
    "topics.key": "name the field whose value keys each record (it orders events per entity), e.g. key: task_id.",
    "topics.route": "type an HTTP path of lower-case segments, e.g. /tasks.",
    "topics.consumed": "type true or false.",
    "topics.delivery": "type stream (a consumer group: key order per partition) or queue (a share group: any "
    "number of workers, each task acknowledged on its own).",
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
}

KEYS: dict[str, tuple[str, ...]] = {
    "topics": tuple(SpecTopic.model_fields),
    "topics.events": tuple(SpecEvent.model_fields),
    "topics.events.fields": tuple(SpecField.model_fields),
}


class FieldModel(Rendered):
    name: str
    type: TypeName
    py_type: str
    optional: bool
    doc: str | None


class EffectModel(Rendered):
    """The event on `emits_to` a handler returns by default, and the fields it copies from its cause."""

    name: str
    copies: list[str]


class EventModel(Rendered):
    name: str
    snake: str
    doc: str
    effect: EffectModel | None
    fields: list[FieldModel]


class TopicModel(Rendered):
    name: str
    dlq: str
    ident: str
    class_name: str
    doc: str
    partitions: int
    key: str
    route: str
    consumed: bool
    queue: bool
    """Consumed by a share group (`delivery: queue`), not a consumer group."""
    emits_to: str | None
    events: list[EventModel]
    stored: bool
    """Stored before it is published (the outbox): its 202 carries no partition or offset."""


class RecordModel(Rendered):
    name: str
    topic: str
    file: str
    schema_: dict[str, Any] = PydanticField(alias="schema")


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


def derive_topics(topics: list[SpecTopic], package_name: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The topics as the templates render them, and the Avro record of every event."""
    by_name = {topic.name: topic for topic in topics}
    namespace = f"{package_name}.events"
    derived = []
    records = []
    for topic in topics:
        names = words(topic.name)
        target = by_name.get(topic.emits_to) if topic.emits_to else None
        events = []
        for event in topic.events:
            doc = event.doc if event.doc is not None else f"{event.name} event."
            events.append(
                {
                    "name": event.name,
                    "snake": snake(event.name),
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
        derived.append(
            {
                "name": topic.name,
                "dlq": f"{topic.name}.dlq",
                "ident": "_".join(names).lower(),
                "class_name": "".join(word.capitalize() for word in names),
                "doc": topic.doc if topic.doc is not None else f"Events on {topic.name}.",
                "partitions": topic.partitions,
                "key": topic.key,
                "route": topic.route,
                "consumed": topic.consumed,
                "queue": topic.delivery == "queue",
                "emits_to": topic.emits_to,
                "events": events,
                "stored": False,
            }
        )
    return derived, records
